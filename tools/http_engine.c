/* The engine thread of `slidesparse serve` and the jobs it runs (the flow is
 * drawn in http_engine.h). */
#include "http_engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "slidesparse/serve.h"
#include "slidesparse/tune.h"

#define DEFAULT_MAX_TOKENS 256

struct http_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;             /* the request thread + the engine while it holds the job */
    /* under mu */
    char *text;           // (len) the text shown so far
    size_t len, cap;
    int done, cancel;
    const char *finish_reason;
    http_api_error error;
    int64_t n_prompt, n_completion;
    /* set at submit, then the engine thread's alone */
    int32_t *ids;         // (n_prompt)
    int64_t max_new;
    int64_t id;           /* the scheduler's */
    int32_t stop_ids[SS_MAX_EOS_IDS + 1];
    int n_stop_ids;
    ss_sampler *sampler;  /* NULL: greedy */
    ss_detokenizer *detok;
    ss_stopper *stopper;
    http_job *next;       /* the inbox list */
};

struct http_engine {
    ss_context *ctx;
    ss_model *model;
    ss_tokenizer *tok;
    ss_model_config cfg;
    ss_chat_format chat;
    ss_kv_cache *kv;
    ss_scheduler *sched;
    pthread_t thread;
    int started;
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    http_job *inbox, *inbox_tail;
    int quit;
    http_engine_stats stats;
    uint64_t seed_counter;
    /* the engine thread's */
    http_job **active; // (n_active) jobs in the scheduler
    int n_active, cap_active;
    float *logits;     // (S, vocab)
    int32_t *next, *tokens; // (S)
};

// --- jobs ---------------------------------------------------------------------------------

static void job_free(http_job *j) {
    ss_sampler_destroy(j->sampler);
    ss_detokenizer_destroy(j->detok);
    ss_stopper_destroy(j->stopper);
    free(j->ids);
    free(j->text);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void job_unref(http_job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left == 0)
        job_free(j);
}

/* Appends shown text (engine thread). */
static void job_append(http_job *j, const char *s, size_t n) {
    if (n == 0)
        return;
    pthread_mutex_lock(&j->mu);
    if (j->len + n + 1 > j->cap) {
        size_t cap = 2 * (j->len + n + 1) + 64;
        char *t = realloc(j->text, cap);
        if (!t) {
            pthread_mutex_unlock(&j->mu);
            return; /* the text is cut; the job still ends */
        }
        j->text = t, j->cap = cap;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Ends the job: finish_reason, or error status (engine thread). */
static void job_end(http_job *j, const char *finish_reason, int status, const char *type, const char *msg) {
    pthread_mutex_lock(&j->mu);
    if (!j->done) {
        j->done = 1;
        j->finish_reason = finish_reason;
        if (status)
            http_api_fail(&j->error, status, type, NULL, "%s", msg);
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

void http_job_next(http_job *j, size_t *sent, http_job_update *u) {
    memset(u, 0, sizeof *u);
    pthread_mutex_lock(&j->mu);
    while (j->len == *sent && !j->done)
        pthread_cond_wait(&j->cv, &j->mu);
    size_t n = j->len - *sent;
    if ((u->text = malloc(n + 1))) {
        if (n)
            memcpy(u->text, j->text + *sent, n);
        u->text[n] = '\0';
        *sent = j->len;
    }
    u->done = j->done;
    u->finish_reason = j->finish_reason;
    u->error = j->error;
    u->usage = (http_api_usage){j->n_prompt, j->n_completion};
    pthread_mutex_unlock(&j->mu);
}

void http_job_release(http_job *j) {
    pthread_mutex_lock(&j->mu);
    if (!j->done)
        j->cancel = 1;
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

// --- submit -------------------------------------------------------------------------------

static int lib_fail(http_api_error *err, int status, ss_status s) {
    return http_api_fail(err, status, status >= 500 ? "server_error" : "invalid_request_error", NULL, "%s",
                         ss_last_error()[0] ? ss_last_error() : ss_status_name(s));
}

/* The prompt's ids and the chat turn's end (-1 without). */
static int encode(http_engine *e, const http_api_request *r, http_job *j, int32_t *eot, http_api_error *err) {
    char *chat = NULL;
    const char *text = r->prompt;
    ss_status s;
    *eot = -1;
    if (r->kind == HTTP_API_CHAT) {
        if (e->chat == SS_CHAT_NONE)
            return http_api_fail(err, 400, "invalid_request_error", "messages",
                                 "the model's tokenizer has no chat role markers: use /v1/completions");
        if ((s = ss_tokenizer_chat_messages(e->tok, e->chat, r->messages, r->n_messages, &chat, eot)) != SS_OK)
            return lib_fail(err, s == SS_ENOMEM ? 500 : 400, s);
        text = chat;
    }
    s = ss_tokenizer_encode(e->tok, text, strlen(text), 1, &j->ids, &j->n_prompt);
    free(chat);
    if (s != SS_OK)
        return lib_fail(err, s == SS_ENOMEM ? 500 : 400, s);
    if (j->n_prompt == 0)
        return http_api_fail(err, 400, "invalid_request_error", "prompt", "the prompt encodes to no tokens");
    return 0;
}

/* max_tokens against the context: max_position_embeddings bounds prompt +
 * output (without max_tokens: DEFAULT_MAX_TOKENS or what is left). */
static int check_length(const http_engine *e, const http_api_request *r, http_job *j, http_api_error *err) {
    int64_t ctx = e->cfg.max_position_embeddings, room = ctx - j->n_prompt;
    j->max_new = r->max_tokens ? r->max_tokens : (room < DEFAULT_MAX_TOKENS ? room : DEFAULT_MAX_TOKENS);
    if (j->max_new < 1 || j->n_prompt + j->max_new > ctx) {
        http_api_fail(err, 400, "invalid_request_error", r->max_tokens ? "max_tokens" : "prompt",
                      "the prompt (%lld tokens) + max_tokens (%lld) exceed the model's context of %lld tokens",
                      (long long)j->n_prompt, (long long)(r->max_tokens ? r->max_tokens : 1), (long long)ctx);
        err->code = "context_length_exceeded";
        return -1;
    }
    return 0;
}

int http_engine_submit(http_engine *e, const http_api_request *r, http_job **out, http_api_error *err) {
    *out = NULL;
    http_job *j = calloc(1, sizeof *j);
    if (!j)
        return http_api_fail(err, 500, "server_error", NULL, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    int32_t eot;
    ss_status s;
    if (encode(e, r, j, &eot, err) || check_length(e, r, j, err))
        goto fail;
    for (int i = 0; i < e->cfg.n_eos_token_ids && !r->ignore_eos; i++)
        j->stop_ids[j->n_stop_ids++] = e->cfg.eos_token_ids[i];
    if (eot >= 0)
        j->stop_ids[j->n_stop_ids++] = eot; /* the end of the assistant's turn stops even with ignore_eos */
    ss_sampling sp = r->sampling;
    if (!r->has_seed) {
        pthread_mutex_lock(&e->mu);
        sp.seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + ++e->seed_counter;
        pthread_mutex_unlock(&e->mu);
    }
    if ((sp.temperature > 0 && (s = ss_sampler_create(&sp, e->cfg.vocab_size, &j->sampler)) != SS_OK) ||
        (s = ss_detokenizer_create(e->tok, 1, &j->detok)) != SS_OK ||
        (s = ss_stopper_create((const char *const *)r->stops, r->n_stops, &j->stopper)) != SS_OK) {
        lib_fail(err, s == SS_ENOMEM ? 500 : 400, s);
        goto fail;
    }
    pthread_mutex_lock(&e->mu);
    if (e->quit) {
        pthread_mutex_unlock(&e->mu);
        http_api_fail(err, 503, "server_error", NULL, "the server is shutting down");
        goto fail;
    }
    if (e->inbox_tail)
        e->inbox_tail->next = j;
    else
        e->inbox = j;
    e->inbox_tail = j;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    *out = j;
    return 0;
fail:
    job_free(j);
    return -1;
}

// --- the engine thread ------------------------------------------------------------------------

/* The job leaves the engine: out of the scheduler, out of the active list. */
static void retire_job(http_engine *e, int i) {
    http_job *j = e->active[i];
    (void)ss_scheduler_cancel(e->sched, j->id); /* cannot fail: between commit and schedule */
    e->active[i] = e->active[--e->n_active];
    pthread_mutex_lock(&e->mu);
    e->stats.served++;
    pthread_mutex_lock(&j->mu);
    e->stats.cancelled += j->cancel && !j->done;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_unlock(&e->mu);
    job_end(j, NULL, 499, "client_closed_request", "the client closed the connection");
    job_unref(j);
}

/* Shows what the detokenizer and stopper still hold (at the end). */
static void flush_text(http_job *j, int stopped) {
    const char *s;
    size_t n;
    if (stopped || ss_detokenizer_finish(j->detok, &s, &n) != SS_OK)
        return;
    if (ss_stopper_push(j->stopper, s, n, &s, &n, &stopped) != SS_OK)
        return;
    job_append(j, s, n);
    if (!stopped) {
        ss_stopper_finish(j->stopper, &s, &n);
        job_append(j, s, n);
    }
}

/* One sampled token of job j; 1 when the job has ended. */
static int take_token(http_job *j, int32_t tok) {
    const char *s;
    size_t n;
    int stopped = 0;
    pthread_mutex_lock(&j->mu);
    j->n_completion++;
    pthread_mutex_unlock(&j->mu);
    for (int k = 0; k < j->n_stop_ids; k++)
        if (tok == j->stop_ids[k]) {
            flush_text(j, 0);
            job_end(j, "stop", 0, NULL, NULL);
            return 1;
        }
    if (ss_detokenizer_push(j->detok, tok, &s, &n) == SS_OK &&
        ss_stopper_push(j->stopper, s, n, &s, &n, &stopped) == SS_OK)
        job_append(j, s, n);
    if (stopped) {
        job_end(j, "stop", 0, NULL, NULL);
        return 1;
    }
    return 0;
}

static int find_active(const http_engine *e, int64_t id) {
    for (int i = 0; i < e->n_active; i++)
        if (e->active[i]->id == id)
            return i;
    return -1;
}

/* Jobs from the inbox into the scheduler (a refused one ends failed). */
static void admit(http_engine *e, http_job *list) {
    while (list) {
        http_job *j = list;
        list = j->next;
        ss_request rq = {.prompt = j->ids, .n_prompt = j->n_prompt, .max_new = j->max_new};
        if (e->n_active == e->cap_active) {
            int cap = e->cap_active ? 2 * e->cap_active : 64;
            http_job **a = realloc(e->active, (size_t)cap * sizeof *a);
            if (!a) {
                job_end(j, NULL, 500, "server_error", "out of memory");
                job_unref(j);
                continue;
            }
            e->active = a, e->cap_active = cap;
        }
        if (ss_scheduler_add(e->sched, &rq, &j->id) != SS_OK) {
            /* ids out of vocabulary, or one sequence beyond the whole KV pool */
            job_end(j, NULL, 400, "invalid_request_error", ss_last_error());
            job_unref(j);
            continue;
        }
        e->active[e->n_active++] = j;
    }
}

/* Every active job ends failed (the engine failed, or the server stops). */
static void fail_all(http_engine *e, int status, const char *msg) {
    while (e->n_active > 0) {
        http_job *j = e->active[0];
        job_end(j, NULL, status, "server_error", msg);
        retire_job(e, 0);
    }
}

/* One step: schedule, forward, sample, commit, hand out the tokens. */
static ss_status step(http_engine *e, char *why, size_t why_n) {
    ss_sched_batch b;
    ss_status s = ss_scheduler_schedule(e->sched, &b);
    snprintf(why, why_n, "%s", ss_last_error());
    if (s != SS_OK || b.n == 0)
        return s;
    int sampled = 0;
    http_job *jobs[b.n > 0 ? b.n : 1];
    for (int i = 0; i < b.n; i++) {
        int k = find_active(e, b.ids[i]);
        jobs[i] = k >= 0 ? e->active[k] : NULL;
        sampled |= b.sample[i] && jobs[i] && jobs[i]->sampler;
    }
    if ((s = ss_model_forward_next(e->model, e->kv, b.steps, b.n, sampled ? e->logits : NULL, e->next)) != SS_OK) {
        /* Committed with placeholder ids so that the batch's jobs can be cancelled. */
        snprintf(why, why_n, "%s", ss_last_error());
        memset(e->tokens, 0, (size_t)b.n * sizeof *e->tokens);
        (void)ss_scheduler_commit(e->sched, e->tokens);
        return s;
    }
    for (int i = 0; i < b.n; i++)
        e->tokens[i] = !b.sample[i]                    ? 0
                       : jobs[i] && jobs[i]->sampler ? ss_sampler_next(jobs[i]->sampler,
                                                                       e->logits + (size_t)i * e->cfg.vocab_size)
                                                     : e->next[i];
    if ((s = ss_scheduler_commit(e->sched, e->tokens)) != SS_OK) {
        snprintf(why, why_n, "%s", ss_last_error());
        return s;
    }
    for (int i = 0; i < b.n; i++) {
        if (!b.sample[i] || !jobs[i])
            continue;
        http_job *j = jobs[i];
        int ended = take_token(j, e->tokens[i]);
        if (!ended && j->n_completion == j->max_new) {
            flush_text(j, 0);
            job_end(j, "length", 0, NULL, NULL);
            ended = 1;
        }
        if (ended)
            retire_job(e, find_active(e, j->id));
    }
    return SS_OK;
}

static void publish_stats(http_engine *e) {
    pthread_mutex_lock(&e->mu);
    e->stats.running = ss_scheduler_n_running(e->sched);
    if (e->stats.running > e->stats.peak_running)
        e->stats.peak_running = e->stats.running;
    e->stats.waiting = ss_scheduler_n_waiting(e->sched);
    e->stats.kv_free_blocks = ss_kv_cache_free_blocks(e->kv);
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg) {
    http_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->quit && !e->inbox && e->n_active == 0)
            pthread_cond_wait(&e->wake, &e->mu);
        http_job *list = e->inbox;
        e->inbox = e->inbox_tail = NULL;
        int quit = e->quit;
        pthread_mutex_unlock(&e->mu);
        admit(e, list);
        if (quit) {
            fail_all(e, 503, "the server is shutting down");
            publish_stats(e);
            return NULL;
        }
        for (int i = e->n_active - 1; i >= 0; i--) { /* clients gone: their blocks back before the step */
            http_job *j = e->active[i];
            pthread_mutex_lock(&j->mu);
            int cancel = j->cancel;
            pthread_mutex_unlock(&j->mu);
            if (cancel)
                retire_job(e, i);
        }
        if (e->n_active > 0) {
            char why[400], msg[512];
            if (step(e, why, sizeof why) != SS_OK) { /* every job in flight fails; the server goes on */
                snprintf(msg, sizeof msg, "the engine failed: %s", why);
                fail_all(e, 500, msg);
            }
        }
        publish_stats(e);
    }
}

// --- create / destroy ---------------------------------------------------------------------------

ss_status http_engine_create(const http_engine_config *c, http_engine **out, char *why, size_t why_n) {
    *out = NULL;
    char path[4096];
    ss_status s = SS_ENOMEM;
    snprintf(why, why_n, "out of memory");
    http_engine *e = calloc(1, sizeof *e);
    if (!e)
        return s;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    snprintf(path, sizeof path, "%s/config.json", c->model_dir);
    if ((s = ss_model_config_load(path, &e->cfg)) != SS_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/tokenizer.json", c->model_dir);
    if ((s = ss_tokenizer_load(c->tokenizer ? c->tokenizer : path, &e->tok)) != SS_OK)
        goto fail;
    e->chat = ss_tokenizer_chat_format(e->tok, e->cfg.model_type);
    int64_t per_seq = (e->cfg.max_position_embeddings + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
    int64_t blocks = per_seq * c->max_num_seqs;
    if (c->kv_memory_mb > 0) {
        int64_t fit = (int64_t)(c->kv_memory_mb * 1048576.0 / (double)ss_kv_block_bytes(&e->cfg, c->kv_dtype));
        blocks = fit < blocks ? fit : blocks;
    }
    if (blocks < 1 || blocks > INT32_MAX) {
        snprintf(why, why_n, "a KV pool of %lld blocks (of %zu bytes): expected 1..%d (see --kv-memory-mb)",
                 (long long)blocks, ss_kv_block_bytes(&e->cfg, c->kv_dtype), INT32_MAX);
        http_engine_destroy(e);
        return SS_EINVAL;
    }
    ss_sched_config sc = {.max_num_seqs = c->max_num_seqs, .max_num_batched_tokens = c->max_num_batched_tokens};
    size_t S = (size_t)c->max_num_seqs;
    if ((s = ss_context_create(c->device, &e->ctx)) != SS_OK ||
        (s = ss_context_set_tuning(e->ctx, NULL, NULL, NULL)) != SS_OK || /* $SS_TUNING_DIR, as generate */
        (s = ss_model_load(e->ctx, c->backend, c->model_dir, &e->model)) != SS_OK)
        goto fail;
    ss_model_set_kv_dtype(e->model, c->kv_dtype); /* before the cache: it takes the model's */
    if ((s = ss_kv_cache_create(e->model, (int32_t)blocks, &e->kv)) != SS_OK ||
        (s = ss_scheduler_create(e->model, e->kv, &sc, &e->sched)) != SS_OK)
        goto fail;
    e->logits = malloc(S * (size_t)e->cfg.vocab_size * sizeof *e->logits);
    e->next = malloc(S * sizeof *e->next);
    e->tokens = malloc(S * sizeof *e->tokens);
    if (!e->logits || !e->next || !e->tokens) {
        http_engine_destroy(e);
        return SS_ENOMEM;
    }
    e->stats.kv_total_blocks = e->stats.kv_free_blocks = ss_kv_cache_total_blocks(e->kv);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        snprintf(why, why_n, "cannot start the engine thread");
        http_engine_destroy(e);
        return SS_ENOMEM;
    }
    e->started = 1;
    *out = e;
    return SS_OK;
fail:
    snprintf(why, why_n, "%s", ss_last_error()[0] ? ss_last_error() : ss_status_name(s));
    http_engine_destroy(e);
    return s;
}

void http_engine_stop(http_engine *e) {
    if (!e || !e->started)
        return;
    pthread_mutex_lock(&e->mu);
    e->quit = 1;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    e->started = 0;
}

void http_engine_destroy(http_engine *e) {
    if (!e)
        return;
    http_engine_stop(e);
    ss_scheduler_destroy(e->sched);
    ss_kv_cache_destroy(e->kv);
    ss_model_destroy(e->model);
    ss_context_destroy(e->ctx);
    ss_tokenizer_destroy(e->tok);
    free(e->active);
    free(e->logits);
    free(e->next);
    free(e->tokens);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->wake);
    free(e);
}

const ss_model_config *http_engine_config_of(const http_engine *e) { return &e->cfg; }

void http_engine_get_stats(http_engine *e, http_engine_stats *st) {
    pthread_mutex_lock(&e->mu);
    *st = e->stats;
    pthread_mutex_unlock(&e->mu);
}
