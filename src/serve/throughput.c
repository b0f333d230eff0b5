/* The prefill / decode throughput benchmarks (SPEC §8): the workload of each
 * M, random prompts, a warm-up serve then a timed one, the peak table for the
 * bound fractions, the weight statistics behind them, and the model stem of
 * the CSV names. The CSV files themselves: throughput_csv.c. */
#include "slidesparse/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *ss_stage_name(ss_stage st) { return st == SS_STAGE_DECODE ? "decode" : "prefill"; }

// --- workloads ----------------------------------------------------------------------------

ss_status ss_workload_make(ss_stage st, int64_t m, ss_workload *out) {
    memset(out, 0, sizeof *out);
    out->m = m;
    if (st == SS_STAGE_PREFILL) {
        int ok = 0;
        for (int64_t v = 512; v <= 32768; v *= 2)
            ok |= v == m;
        if (!ok)
            return ss_fail(SS_EINVAL, "prefill M %lld is not supported, expected one of 512, 1024, 2048, 4096, 8192, 16384, 32768",
                           (long long)m);
        out->prompt_len = m < 1024 ? m : 1024;
        out->output_len = 1;
        out->max_num_seqs = (int)((m + 1023) / 1024);
        out->num_prompts = 128 * (int64_t)out->max_num_seqs;
        out->max_num_batched_tokens = out->max_num_seqs * out->prompt_len;
        return SS_OK;
    }
    if (m != 64 && m != 128 && m != 256 && m != 512)
        return ss_fail(SS_EINVAL, "decode M %lld is not supported, expected one of 64, 128, 256, 512",
                       (long long)m);
    out->prompt_len = 16;
    out->output_len = 256;
    out->max_num_seqs = (int)m;
    out->num_prompts = m;
    out->max_num_batched_tokens = m > 272 ? m : 272;
    return SS_OK;
}

int64_t ss_workload_scaled_prompts(const ss_workload *w, double f) {
    if (!(f > 0) || f >= 1)
        return w->num_prompts;
    /* Scaling drops whole waves, never shrinks one: with fewer prompts than
     * max_num_seqs a step would batch fewer sequences than the SPEC workload
     * (decode, where R = S = M, would measure a batch of M/16). */
    int64_t r = (int64_t)((double)w->num_prompts * f + 0.5);
    int64_t wave = w->max_num_seqs < w->num_prompts ? w->max_num_seqs : w->num_prompts;
    return r < wave ? wave : r;
}

// --- peaks --------------------------------------------------------------------------------

/* Dense tensor-core peaks (vendor datasheets, boost clock, no sparsity) and
 * HBM bandwidth. First match wins, so H200 precedes H100 and variants precede
 * the plain name. */
static const struct {
    const char *needle, *needle2;
    ss_peak peak;
} peaks[] = {
    {"H200", NULL, {1979, 1979, 4.8, "H200 SXM"}},
    {"H100", "PCIe", {1513, 1513, 2.0, "H100 PCIe"}},
    {"H100", "NVL", {1671, 1671, 3.9, "H100 NVL"}},
    {"H100", NULL, {1979, 1979, 3.35, "H100 SXM"}},
    {"A100", NULL, {624, 0, 2.039, "A100 SXM 80GB"}},
    {"L40S", NULL, {733, 733, 0.864, "L40S"}},
};

const ss_peak *ss_peak_lookup(const char *gpu_name) {
    if (!gpu_name)
        return NULL;
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++)
        if (strstr(gpu_name, peaks[i].needle) && (!peaks[i].needle2 || strstr(gpu_name, peaks[i].needle2)))
            return &peaks[i].peak;
    return NULL;
}

// --- weights ------------------------------------------------------------------------------

void ss_model_weight_stats(const ss_model_config *c, double *params, double *bytes_per_step) {
    double h = c->hidden_size, inter = c->intermediate_size, hd = c->head_dim;
    double n[4] = {(c->num_attention_heads + 2.0 * c->num_key_value_heads) * hd, h, 2 * inter, h};
    int64_t k[4] = {c->hidden_size, (int64_t)c->num_attention_heads * c->head_dim, c->hidden_size,
                    c->intermediate_size};
    double p = 0, bytes = 0;
    for (int i = 0; i < 4; i++) {
        p += n[i] * (double)k[i];
        if (c->kind == SS_WEIGHTS_SLID) {
            /* 2:4 compressed: half of K' values + 2 bits of metadata each. */
            double kp = (double)ss_slid_k(c->pattern, k[i]);
            bytes += n[i] * (kp / 2 + kp / 8);
        } else {
            bytes += n[i] * (double)k[i] * (c->weight_dtype == SS_DTYPE_BF16 ? 2 : 1);
        }
    }
    *params = p * c->num_hidden_layers;
    *bytes_per_step = bytes * c->num_hidden_layers + 2.0 * c->vocab_size * h;
}

double ss_model_kv_row_bytes(const ss_model_config *c, ss_kv_dtype d) {
    /* K and V, every layer and KV head (ss_kv_block_bytes per row) */
    return 2.0 * c->num_hidden_layers * c->num_key_value_heads * (double)ss_kv_row_bytes(d, c->head_dim);
}

void ss_model_stem(const char *dir, char *buf, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    char name[256];
    size_t w = len - start < sizeof name - 1 ? len - start : sizeof name - 1;
    memcpy(name, dir + start, w);
    name[w] = '\0';
    char *sl = strstr(name, "-SlideSparse-");
    if (sl)
        *sl = '\0';
    static const char *const dtypes[] = {"-INT8", "-FP8", "-BF16"};
    for (size_t i = 0; i < 3; i++) {
        size_t nl = strlen(name), dl = strlen(dtypes[i]);
        if (nl > dl && !strcmp(name + nl - dl, dtypes[i])) {
            name[nl - dl] = '\0';
            break;
        }
    }
    snprintf(buf, n, "%s", name[0] ? name : "model");
}

// --- one run ------------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Serves prompts[0..n) (each len p) with max_new o on a fresh scheduler. */
static ss_status serve_prompts(ss_model *m, ss_kv_cache *kv, const ss_workload *w,
                               const int32_t *prompts, int64_t n, int64_t o,
                               const ss_serve_opts *so, ss_serve_stats *st) {
    ss_sched_config sc = {.max_num_seqs = w->max_num_seqs,
                          .max_num_batched_tokens = w->max_num_batched_tokens};
    ss_scheduler *s = NULL;
    SS_TRY(ss_scheduler_create(m, kv, &sc, &s));
    ss_status rc = SS_OK;
    for (int64_t i = 0; i < n && rc == SS_OK; i++) {
        ss_request r = {.prompt = prompts + i * w->prompt_len, .n_prompt = w->prompt_len, .max_new = o};
        rc = ss_scheduler_add(s, &r, NULL);
    }
    if (rc == SS_OK)
        rc = ss_serve_run(m, s, so, st);
    ss_scheduler_destroy(s);
    return rc;
}

ss_status ss_throughput_run(ss_model *m, int32_t kv_blocks, const ss_workload *w,
                            int64_t num_prompts, uint64_t seed, const ss_serve_opts *o,
                            ss_throughput_row *row) {
    memset(row, 0, sizeof *row);
    const ss_model_config *c = ss_model_get_config(m);
    int64_t total = w->prompt_len + w->output_len;
    if (total > c->max_position_embeddings)
        return ss_fail(SS_EINVAL, "workload M %lld: prompt %lld + output %lld tokens exceed the model's max_position_embeddings %d",
                       (long long)w->m, (long long)w->prompt_len, (long long)w->output_len,
                       c->max_position_embeddings);
    int64_t per_seq = (total - 1 + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
    if (per_seq > kv_blocks)
        return ss_fail(SS_ENOMEM, "workload M %lld: one sequence of %lld tokens needs %lld KV blocks (%.1f MB), the memory budget holds %d",
                       (long long)w->m, (long long)total, (long long)per_seq,
                       (double)per_seq * (double)ss_kv_block_bytes(c, ss_model_get_kv_dtype(m)) / 1e6, (int)kv_blocks);
    if (num_prompts < 1)
        return ss_fail(SS_EINVAL, "workload M %lld: %lld prompts, expected >= 1", (long long)w->m, (long long)num_prompts);
    /* No larger pool than the batch can ever use. */
    int64_t useful = per_seq * w->max_num_seqs;
    int32_t blocks = useful < kv_blocks ? (int32_t)useful : kv_blocks;

    size_t n_ids = (size_t)num_prompts * (size_t)w->prompt_len;
    int32_t *prompts = malloc(n_ids * sizeof *prompts);
    if (!prompts)
        return ss_fail(SS_ENOMEM, "workload M %lld: out of memory for %lld prompts", (long long)w->m,
                       (long long)num_prompts);
    for (size_t i = 0; i < n_ids; i++)
        prompts[i] = (int32_t)(splitmix64(&seed) % (uint64_t)c->vocab_size);
    ss_kv_cache *kv = NULL;
    ss_status rc = ss_kv_cache_create(m, blocks, &kv);
    if (rc != SS_OK)
        goto done;

    /* Warm-up: one full batch through prefill (and a decode step when the
     * workload decodes). */
    ss_serve_opts warm = {.stop = o ? o->stop : NULL};
    ss_serve_stats ws;
    int64_t n_warm = num_prompts < w->max_num_seqs ? num_prompts : w->max_num_seqs;
    if ((rc = serve_prompts(m, kv, w, prompts, n_warm, w->output_len < 2 ? w->output_len : 2, &warm, &ws)) != SS_OK)
        goto done;
    if (ws.stopped) {
        row->stats.stopped = 1;
        goto done;
    }
    if ((rc = serve_prompts(m, kv, w, prompts, num_prompts, w->output_len, o, &row->stats)) != SS_OK)
        goto done;
    row->w = *w;
    row->num_prompts = num_prompts;
    row->input_tokens = num_prompts * w->prompt_len;
    row->output_tokens = num_prompts * w->output_len;
    row->elapsed_s = row->stats.elapsed_s;
    if (row->elapsed_s > 0) {
        row->requests_per_s = (double)num_prompts / row->elapsed_s;
        row->tokens_per_s = (double)(row->input_tokens + row->output_tokens) / row->elapsed_s;
    }
done:
    ss_kv_cache_destroy(kv);
    free(prompts);
    return rc;
}
