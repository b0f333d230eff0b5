/* The continuous-batching scheduler (policy in slidesparse/serve.h): waiting
 * queue, running set, chunked prefill under the token budget, KV block
 * reservation and preemption of the newest sequence by recomputation. It
 * touches no model data, so the same code drives the CPU and GPU engines. */
#include "slidesparse/serve.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    int32_t *tokens;    // (n_prompt + max_new) prompt, then generated tokens
    int64_t n_prompt, max_new, n_out;
    int64_t n_computed; /* positions whose keys/values are in the cache */
    int finished;
    ss_kv_seq kv;
} sequence;

struct ss_scheduler {
    ss_sched_config cfg;
    ss_kv_cache *kv;
    int vocab, max_pos;
    sequence **seqs; // (n_seqs) by request id; pointers stay put (batches point into them)
    int64_t n_seqs, cap_seqs;
    int64_t *waiting; // (n_waiting) FIFO, front at 0
    int64_t n_waiting;
    int64_t *running; // (n_running) admission order, oldest first
    int n_running;
    int64_t preemptions;
    ss_sched_batch batch; /* the last batch (arrays of S entries) */
    int committed;        /* the last batch was committed */
};

static int64_t seq_len(const sequence *q) { return q->n_prompt + q->n_out; }

ss_status ss_scheduler_create(const ss_model *m, ss_kv_cache *kv, const ss_sched_config *c,
                              ss_scheduler **out) {
    *out = NULL;
    if (c->max_num_seqs < 1 || c->max_num_batched_tokens < c->max_num_seqs)
        return ss_fail(SS_EINVAL, "scheduler: max_num_seqs %d, max_num_batched_tokens %lld: expected S >= 1 and T >= S",
                       c->max_num_seqs, (long long)c->max_num_batched_tokens);
    ss_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return ss_fail(SS_ENOMEM, "scheduler: out of memory");
    const ss_model_config *mc = ss_model_get_config(m);
    s->cfg = *c;
    s->kv = kv;
    s->vocab = mc->vocab_size;
    s->max_pos = mc->max_position_embeddings;
    size_t S = (size_t)c->max_num_seqs;
    s->running = malloc(S * sizeof *s->running);
    s->batch.steps = malloc(S * sizeof *s->batch.steps);
    s->batch.ids = malloc(S * sizeof *s->batch.ids);
    s->batch.sample = malloc(S * sizeof *s->batch.sample);
    s->committed = 1;
    if (!s->running || !s->batch.steps || !s->batch.ids || !s->batch.sample) {
        ss_scheduler_destroy(s);
        return ss_fail(SS_ENOMEM, "scheduler: out of memory for %d sequences", c->max_num_seqs);
    }
    *out = s;
    return SS_OK;
}

void ss_scheduler_destroy(ss_scheduler *s) {
    if (!s)
        return;
    for (int64_t i = 0; i < s->n_seqs; i++) {
        if (!s->seqs[i])
            continue; /* cancelled */
        ss_kv_seq_release(s->kv, &s->seqs[i]->kv);
        free(s->seqs[i]->tokens);
        free(s->seqs[i]);
    }
    free(s->seqs);
    free(s->waiting);
    free(s->running);
    free(s->batch.steps);
    free(s->batch.ids);
    free(s->batch.sample);
    free(s);
}

/* Blocks that hold positions 0..n-1. */
static int64_t blocks_for(int64_t n) { return (n + SS_KV_BLOCK - 1) / SS_KV_BLOCK; }

ss_status ss_scheduler_add(ss_scheduler *s, const ss_request *r, int64_t *id) {
    if (r->n_prompt < 1 || !r->prompt || r->max_new < 1)
        return ss_fail(SS_EINVAL, "scheduler: request of %lld prompt tokens and %lld new, expected >= 1 of each",
                       (long long)r->n_prompt, (long long)r->max_new);
    for (int64_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= s->vocab)
            return ss_fail(SS_EINVAL, "scheduler: prompt id %d at index %lld is out of vocabulary (vocab_size %d)",
                           (int)r->prompt[i], (long long)i, s->vocab);
    int64_t total = r->n_prompt + r->max_new;
    if (total > s->max_pos)
        return ss_fail(SS_EINVAL, "scheduler: prompt %lld + output %lld tokens exceed max_position_embeddings %d",
                       (long long)r->n_prompt, (long long)r->max_new, s->max_pos);
    /* The last sampled token is never written to the cache. */
    int64_t need = blocks_for(total - 1);
    if (need > ss_kv_cache_total_blocks(s->kv))
        return ss_fail(SS_ENOMEM, "scheduler: one sequence of %lld tokens needs %lld KV blocks, the pool holds %d",
                       (long long)total, (long long)need, (int)ss_kv_cache_total_blocks(s->kv));
    if (s->n_seqs == s->cap_seqs) {
        int64_t cap = s->cap_seqs ? 2 * s->cap_seqs : 64;
        sequence **q = realloc(s->seqs, (size_t)cap * sizeof *q);
        if (!q)
            return ss_fail(SS_ENOMEM, "scheduler: out of memory for %lld requests", (long long)cap);
        s->seqs = q;
        int64_t *w = realloc(s->waiting, (size_t)cap * sizeof *w);
        if (!w)
            return ss_fail(SS_ENOMEM, "scheduler: out of memory for %lld requests", (long long)cap);
        s->waiting = w;
        s->cap_seqs = cap;
    }
    sequence *q = calloc(1, sizeof *q);
    int32_t *t = malloc((size_t)total * sizeof *t);
    if (!q || !t) {
        free(q);
        free(t);
        return ss_fail(SS_ENOMEM, "scheduler: out of memory for a request of %lld tokens", (long long)total);
    }
    memcpy(t, r->prompt, (size_t)r->n_prompt * sizeof *t);
    q->tokens = t;
    q->n_prompt = r->n_prompt;
    q->max_new = r->max_new;
    ss_kv_seq_init(&q->kv);
    s->seqs[s->n_seqs] = q;
    s->waiting[s->n_waiting++] = s->n_seqs;
    if (id)
        *id = s->n_seqs;
    s->n_seqs++;
    return SS_OK;
}

// --- one step ---------------------------------------------------------------------------

static void batch_push(ss_scheduler *s, int64_t id, int64_t n_tok) {
    sequence *q = s->seqs[id];
    ss_sched_batch *b = &s->batch;
    b->steps[b->n] = (ss_seq_step){.tokens = q->tokens + q->n_computed, .n_tokens = n_tok,
                                   .start_pos = q->n_computed, .kv = &q->kv};
    b->ids[b->n] = id;
    b->sample[b->n] = q->n_computed + n_tok == seq_len(q);
    b->n_tokens += n_tok;
    b->n_decode += seq_len(q) - q->n_computed == 1;
    b->n++;
}

/* Frees the newest running sequence's blocks and puts it at the front of the
 * waiting queue; its generated tokens are kept for the recomputation. */
static void preempt_newest(ss_scheduler *s) {
    int64_t id = s->running[--s->n_running];
    sequence *q = s->seqs[id];
    ss_kv_seq_release(s->kv, &q->kv);
    q->n_computed = 0;
    memmove(s->waiting + 1, s->waiting, (size_t)s->n_waiting * sizeof *s->waiting);
    s->waiting[0] = id;
    s->n_waiting++;
    s->preemptions++;
    s->batch.preempted++;
}

/* Running sequences, oldest first. Returns the budget left. */
static int64_t schedule_running(ss_scheduler *s, int64_t budget) {
    int decode_behind = 0;
    for (int i = 0; i < s->n_running; i++) {
        sequence *q = s->seqs[s->running[i]];
        decode_behind += seq_len(q) - q->n_computed == 1;
    }
    for (int i = 0; i < s->n_running; i++) {
        int64_t id = s->running[i];
        sequence *q = s->seqs[id];
        int64_t left = seq_len(q) - q->n_computed;
        int64_t n_tok;
        if (left == 1) {
            decode_behind--;
            n_tok = 1;
        } else {
            /* A chunk, leaving one token of budget per decoding sequence behind. */
            int64_t room = budget - decode_behind;
            n_tok = left < room ? left : room;
            if (n_tok <= 0)
                continue;
        }
        if (budget < n_tok)
            continue; /* cannot happen while T >= S; kept as a guard */
        int self_preempted = 0;
        while (ss_kv_seq_reserve(s->kv, &q->kv, q->n_computed + n_tok) != SS_OK) {
            /* Sequences behind i are not in the batch yet; the newest goes. */
            int64_t newest = s->running[s->n_running - 1];
            sequence *v = s->seqs[newest];
            if (v != q && seq_len(v) - v->n_computed == 1)
                decode_behind--;
            preempt_newest(s);
            if (newest == id) {
                self_preempted = 1;
                break;
            }
        }
        ss_clear_error();
        if (self_preempted)
            break;
        batch_push(s, id, n_tok);
        budget -= n_tok;
    }
    return budget;
}

/* Admits waiting sequences (FIFO) while S and the budget allow. */
static void admit_waiting(ss_scheduler *s, int64_t budget) {
    while (s->n_waiting > 0 && s->n_running < s->cfg.max_num_seqs && budget > 0) {
        int64_t id = s->waiting[0];
        sequence *q = s->seqs[id];
        int64_t left = seq_len(q) - q->n_computed;
        int64_t n_tok = left < budget ? left : budget;
        if (ss_kv_seq_reserve(s->kv, &q->kv, q->n_computed + n_tok) != SS_OK) {
            ss_clear_error();
            break;
        }
        memmove(s->waiting, s->waiting + 1, (size_t)(s->n_waiting - 1) * sizeof *s->waiting);
        s->n_waiting--;
        s->running[s->n_running++] = id;
        batch_push(s, id, n_tok);
        budget -= n_tok;
    }
}

ss_status ss_scheduler_schedule(ss_scheduler *s, ss_sched_batch *b) {
    if (!s->committed)
        return ss_fail(SS_EINVAL, "scheduler: the previous batch was not committed");
    s->batch.n = 0;
    s->batch.n_tokens = 0;
    s->batch.n_decode = 0;
    s->batch.preempted = 0;
    int64_t budget = schedule_running(s, s->cfg.max_num_batched_tokens);
    if (s->batch.preempted == 0)
        admit_waiting(s, budget);
    if (s->batch.n == 0 && !ss_scheduler_done(s))
        return ss_fail(SS_ENOMEM, "scheduler: nothing fits: %d running, %lld waiting, %d of %d KV blocks free",
                       s->n_running, (long long)s->n_waiting, (int)ss_kv_cache_free_blocks(s->kv),
                       (int)ss_kv_cache_total_blocks(s->kv));
    s->committed = s->batch.n == 0;
    *b = s->batch;
    return SS_OK;
}

static void retire(ss_scheduler *s, int64_t id) {
    sequence *q = s->seqs[id];
    q->finished = 1;
    ss_kv_seq_release(s->kv, &q->kv);
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == id) {
            memmove(s->running + i, s->running + i + 1, (size_t)(s->n_running - i - 1) * sizeof *s->running);
            s->n_running--;
            break;
        }
}

ss_status ss_scheduler_commit(ss_scheduler *s, const int32_t *tokens) {
    if (s->committed)
        return ss_fail(SS_EINVAL, "scheduler: commit without a scheduled batch");
    const ss_sched_batch *b = &s->batch;
    for (int i = 0; i < b->n; i++) {
        if (b->sample[i] && (tokens[i] < 0 || tokens[i] >= s->vocab))
            return ss_fail(SS_EINVAL, "scheduler: sampled id %d for request %lld is out of vocabulary (vocab_size %d)",
                           (int)tokens[i], (long long)b->ids[i], s->vocab);
    }
    for (int i = 0; i < b->n; i++) {
        sequence *q = s->seqs[b->ids[i]];
        q->n_computed += b->steps[i].n_tokens;
        if (!b->sample[i])
            continue;
        q->tokens[seq_len(q)] = tokens[i];
        q->n_out++;
        if (q->n_out == q->max_new)
            retire(s, b->ids[i]);
    }
    s->committed = 1;
    return SS_OK;
}

ss_status ss_scheduler_cancel(ss_scheduler *s, int64_t id) {
    if (!s->committed)
        return ss_fail(SS_EINVAL, "scheduler: cancel of request %lld while a batch awaits its commit", (long long)id);
    if (id < 0 || id >= s->n_seqs || !s->seqs[id])
        return ss_fail(SS_EINVAL, "scheduler: cancel of request %lld: no such request (or cancelled already)",
                       (long long)id);
    sequence *q = s->seqs[id];
    if (!q->finished) {
        for (int64_t i = 0; i < s->n_waiting; i++)
            if (s->waiting[i] == id) {
                memmove(s->waiting + i, s->waiting + i + 1, (size_t)(s->n_waiting - i - 1) * sizeof *s->waiting);
                s->n_waiting--;
                break;
            }
        retire(s, id); /* out of the running set (when there), blocks back to the pool */
    }
    free(q->tokens);
    free(q);
    s->seqs[id] = NULL;
    return SS_OK;
}

int ss_scheduler_done(const ss_scheduler *s) { return s->n_running == 0 && s->n_waiting == 0; }
int ss_scheduler_n_running(const ss_scheduler *s) { return s->n_running; }
int ss_scheduler_n_waiting(const ss_scheduler *s) { return (int)s->n_waiting; }
int64_t ss_scheduler_preemptions(const ss_scheduler *s) { return s->preemptions; }
ss_kv_cache *ss_scheduler_kv(const ss_scheduler *s) { return s->kv; }

const int32_t *ss_scheduler_output(const ss_scheduler *s, int64_t id, int64_t *n, int *finished) {
    if (id < 0 || id >= s->n_seqs || !s->seqs[id]) {
        *n = 0;
        return NULL;
    }
    const sequence *q = s->seqs[id];
    *n = q->n_out;
    if (finished)
        *finished = q->finished;
    return q->tokens + q->n_prompt;
}
