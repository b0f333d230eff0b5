/* Generation of one prompt over a private KV cache: prefill in one forward,
 * then one forward per new token, greedy or through a sampler, until
 * max_new ids, a stop id or the caller says stop. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "slidesparse/quant.h"

static ss_status check_prompt(const ss_model *m, const int32_t *prompt, int64_t n_prompt, int64_t max_new) {
    const ss_model_config *c = &m->cfg;
    if (n_prompt <= 0)
        return ss_fail(SS_EINVAL, "generate: empty prompt, expected at least one token id");
    if (max_new < 1)
        return ss_fail(SS_EINVAL, "generate: max_new %lld, expected >= 1", (long long)max_new);
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= c->vocab_size)
            return ss_fail(SS_EINVAL, "generate: prompt id %d at index %lld is out of vocabulary (vocab_size %d)",
                           (int)prompt[i], (long long)i, c->vocab_size);
    if (n_prompt + max_new > c->max_position_embeddings)
        return ss_fail(SS_EINVAL, "generate: prompt of %lld + %lld new tokens exceeds max_position_embeddings %d",
                       (long long)n_prompt, (long long)max_new, c->max_position_embeddings);
    return SS_OK;
}

static int is_stop(const ss_generate_opts *o, int32_t id) {
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == id)
            return 1;
    return 0;
}

ss_status ss_generate(ss_model *m, const int32_t *prompt, int64_t n_prompt, const ss_generate_opts *o,
                      int32_t *out, int64_t *n_out, float *last_logits) {
    const ss_model_config *c = &m->cfg;
    *n_out = 0;
    SS_TRY(check_prompt(m, prompt, n_prompt, o->max_new));
    int64_t total = n_prompt + o->max_new;
    int may_stop_early = o->n_stop_ids > 0 || o->on_token;
    ss_kv_cache *kc = NULL;
    ss_kv_seq seq;
    ss_kv_seq_init(&seq);
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    ss_status s = logits ? SS_OK : ss_fail(SS_ENOMEM, "generate: out of memory");
    if (s == SS_OK)
        s = ss_kv_cache_create(m, (int32_t)((total + SS_KV_BLOCK - 1) / SS_KV_BLOCK), &kc);
    if (s != SS_OK)
        goto fail;
    ss_seq_step step = {.tokens = prompt, .n_tokens = n_prompt, .start_pos = 0, .kv = &seq};
    for (int64_t i = 0; i < o->max_new; i++) {
        /* A GPU model samples greedily on the device and copies back only the
         * id, unless the host needs the logits: to sample, or to return them. */
        int want = !m->gpu || o->sampler || (last_logits && (i == o->max_new - 1 || may_stop_early));
        int32_t greedy;
        if ((s = ss_model_forward_next(m, kc, &step, 1, want ? logits : NULL, &greedy)) != SS_OK)
            goto fail;
        /* Greedy sampling of NaN logits picks id 0 every time: a damaged
         * model would "generate" 0,0,0 and succeed. */
        if (want && ss_check_finite("logits", SS_DTYPE_F32, logits, 1, c->vocab_size) != SS_OK) {
            char why[SS_ERROR_MAX];
            snprintf(why, sizeof why, "%s", ss_last_error());
            s = ss_fail(SS_EINVAL, "step %lld of %lld: %s; the model's weights or activations are "
                        "not finite (is the checkpoint damaged?)", (long long)i + 1,
                        (long long)o->max_new, why);
            goto fail;
        }
        int32_t id = o->sampler ? ss_sampler_next(o->sampler, logits) : greedy;
        out[(*n_out)++] = id;
        if (is_stop(o, id) || (o->on_token && o->on_token(o->user, id)))
            break;
        step = (ss_seq_step){.tokens = &out[i], .n_tokens = 1, .start_pos = n_prompt + i, .kv = &seq};
    }
    if (last_logits)
        for (int64_t i = 0; i < c->vocab_size; i++)
            last_logits[i] = logits[i];
fail:
    if (kc)
        ss_kv_seq_release(kc, &seq);
    ss_kv_cache_destroy(kc);
    free(logits);
    return s;
}

ss_status ss_generate_greedy(ss_model *m, const int32_t *prompt, int64_t n_prompt, int64_t max_new, int32_t *out,
                             float *last_logits) {
    ss_generate_opts o = {.max_new = max_new};
    int64_t n;
    return ss_generate(m, prompt, n_prompt, &o, out, &n, last_logits);
}
