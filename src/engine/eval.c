/* Teacher-forced perplexity: windows of the ids fed one token at a time
 * through one sequence's KV cache, each step's logits scored against the
 * next id with a double-precision log-softmax. */
#include "engine/model.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

#define DEFAULT_CONTEXT 512

double ss_eval_token_nll(const float *logits, int64_t vocab, int32_t target) {
    double mx = -INFINITY;
    for (int64_t i = 0; i < vocab; i++) {
        if (!isfinite(logits[i]))
            return NAN;
        if (logits[i] > mx)
            mx = logits[i];
    }
    double sum = 0;
    for (int64_t i = 0; i < vocab; i++)
        sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

static ss_status check_eval(const ss_model_config *c, const int32_t *ids, int64_t n, int64_t ctx,
                            int64_t stride) {
    if (ctx < 2 || ctx > c->max_position_embeddings)
        return ss_fail(SS_EINVAL, "eval: context %lld, expected 2..%d (max_position_embeddings)", (long long)ctx,
                       c->max_position_embeddings);
    if (stride < 1 || stride > ctx)
        return ss_fail(SS_EINVAL, "eval: stride %lld, expected 1..%lld (the context)", (long long)stride,
                       (long long)ctx);
    if (n < 2)
        return ss_fail(SS_EINVAL, "eval: %lld token(s), expected at least 2 (one to predict from, one to "
                       "predict)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return ss_fail(SS_EINVAL, "eval: id %d at index %lld is out of vocabulary (vocab_size %d)",
                           (int)ids[i], (long long)i, c->vocab_size);
    return SS_OK;
}

/* Scores positions first..end-1 of the window [begin, end): feeds begin..end-2
 * one at a time; the logits after position p predict ids[p + 1]. */
static ss_status eval_window(ss_model *m, ss_kv_cache *kc, const int32_t *ids, int64_t begin, int64_t end,
                             int64_t first, float *logits, ss_eval_result *r) {
    const ss_model_config *c = &m->cfg;
    ss_kv_seq seq;
    ss_kv_seq_init(&seq);
    ss_status s = SS_OK;
    for (int64_t p = begin; p < end - 1 && s == SS_OK; p++) {
        ss_seq_step step = {.tokens = &ids[p], .n_tokens = 1, .start_pos = p - begin, .kv = &seq};
        if ((s = ss_model_forward(m, kc, &step, 1, logits)) != SS_OK || p + 1 < first)
            continue;
        double nll = ss_eval_token_nll(logits, c->vocab_size, ids[p + 1]);
        if (!isfinite(nll)) {
            s = ss_fail(SS_EINVAL, "eval: the logits predicting token %lld (step %lld of the window at token "
                        "%lld) are not finite; the model's weights or activations are not finite (is the "
                        "checkpoint damaged?)", (long long)(p + 1), (long long)(p - begin + 1), (long long)begin);
            break;
        }
        r->nll_sum += nll;
        r->n_tokens++;
    }
    ss_kv_seq_release(kc, &seq);
    return s;
}

ss_status ss_eval_perplexity(ss_model *m, const int32_t *ids, int64_t n, const ss_eval_opts *o,
                             ss_eval_result *out) {
    const ss_model_config *c = &m->cfg;
    int64_t ctx = o && o->context ? o->context
                                  : (c->max_position_embeddings < DEFAULT_CONTEXT ? c->max_position_embeddings
                                                                                 : DEFAULT_CONTEXT);
    int64_t stride = o && o->stride ? o->stride : ctx;
    *out = (ss_eval_result){0};
    SS_TRY(check_eval(c, ids, n, ctx, stride));
    ss_kv_cache *kc = NULL;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    ss_status s = logits ? SS_OK : ss_fail(SS_ENOMEM, "eval: out of memory for %d logits", c->vocab_size);
    if (s == SS_OK)
        s = ss_kv_cache_create(m, (int32_t)((ctx + SS_KV_BLOCK - 1) / SS_KV_BLOCK), &kc);
    ss_eval_result r = {0};
    for (int64_t begin = 0, scored_to = 0; s == SS_OK; begin += stride) {
        int64_t end = begin + ctx < n ? begin + ctx : n;
        int64_t first = begin + 1 > scored_to ? begin + 1 : scored_to;
        s = eval_window(m, kc, ids, begin, end, first, logits, &r);
        r.n_windows++;
        scored_to = end;
        if (end == n)
            break;
    }
    if (s == SS_OK) {
        r.mean_nll = r.nll_sum / (double)r.n_tokens;
        r.perplexity = exp(r.mean_nll);
        *out = r;
    }
    ss_kv_cache_destroy(kc);
    free(logits);
    return s;
}
