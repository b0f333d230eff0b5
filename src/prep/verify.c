/* verify: re-derive every slid tensor of a SlideSparse checkpoint from its
 * dense source, independently of the file's own claims, and prove it lossless:
 *   1. slide(prune(quantize(dense))) == slid, byte for byte, scales too;
 *   2. every aligned 4 of the slid rows holds <= 2 nonzeros (2:4-valid);
 *   3. unslide(slid) == the pruned dense weight;
 *   4. ss_linear (CPU) of the slid weight == ss_linear of the pruned dense
 *      weight on random activations (INT8: bit for bit; FP8: F32 rounding).
 * Copied tensors (embeddings, norms, biases, lm_head) must be byte-identical
 * (F16/F32 sources: identical to their values rounded to BF16). */
#include "prep_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/linear.h"
#include "slidesparse/quant.h"

typedef struct {
    const ss_verify_opts *o;
    ss_checkpoint *dense, *slid;
    const ss_model_config *dc, *sc;
    ss_context *ctx;
    ss_pattern pat;
    ss_dtype qdt;
    int from_bf16, per_channel;
    int use_ref; /* prune ties by |BF16| (the slid one was converted from BF16) */
} verifier;

/* A slid checkpoint converted from a quantized one broke pruning ties by
 * index only ("tie_break": "index"); re-deriving it from the BF16 source must
 * do the same. */
static int ties_by_index(const ss_checkpoint *ck) {
    json_t *j = json_loads(ss_checkpoint_config_json(ck), 0, NULL);
    const char *t = json_string_value(json_object_get(json_object_get(j, "slidesparse"), "tie_break"));
    int r = t && strcmp(t, "index") == 0;
    json_decref(j);
    return r;
}

typedef struct {
    ss_dtype qdt;
    ss_pattern pat;
    int64_t k, kp;
    uint8_t *pruned, *slid;       /* (N, K), (N, K') */
    ss_dtype ref_dtype;
    const uint8_t *ref;           /* (N, K) of ref_dtype (BF16, F16, F32) or NULL */
} ps_ctx;

static ss_status prune_slide_rows(void *ctx, int64_t r0, int64_t r1) {
    ps_ctx *c = ctx;
    size_t es = ss_dtype_size(c->ref_dtype);
    SS_TRY(ss_prune(c->qdt, c->pruned + r0 * c->k, r1 - r0, c->k, c->pat, c->ref_dtype,
                    c->ref ? c->ref + (size_t)(r0 * c->k) * es : NULL));
    return ss_slide(c->qdt, c->pruned + r0 * c->k, r1 - r0, c->k, c->pat, c->slid + r0 * c->kp);
}

static ss_status open_both(verifier *v) {
    const ss_verify_opts *o = v->o;
    SS_TRY(ss_checkpoint_open(o->dense_dir, &v->dense));
    SS_TRY(ss_checkpoint_open(o->slid_dir, &v->slid));
    v->dc = ss_checkpoint_config(v->dense);
    v->sc = ss_checkpoint_config(v->slid);
    if (v->sc->kind != SS_WEIGHTS_SLID)
        return ss_fail(SS_EFORMAT, "%s/config.json: not a SlideSparse checkpoint (no slidesparse block)",
                       o->slid_dir);
    if (v->dc->kind == SS_WEIGHTS_SLID)
        return ss_fail(SS_EFORMAT, "%s/config.json: expected a dense (BF16, F16, F32 or quantized) checkpoint, "
                       "found a SlideSparse one", o->dense_dir);
    const ss_model_config *a = v->dc, *b = v->sc;
    if (a->arch != b->arch || a->hidden_size != b->hidden_size ||
        a->intermediate_size != b->intermediate_size || a->num_hidden_layers != b->num_hidden_layers ||
        a->num_attention_heads != b->num_attention_heads ||
        a->num_key_value_heads != b->num_key_value_heads || a->vocab_size != b->vocab_size)
        return ss_fail(SS_EFORMAT, "%s vs %s: config.json describes different models (%s %dx%d vs %s %dx%d)",
                       o->dense_dir, o->slid_dir, a->architecture, a->num_hidden_layers, a->hidden_size,
                       b->architecture, b->num_hidden_layers, b->hidden_size);
    v->pat = b->pattern;
    v->qdt = b->weight_dtype;
    v->from_bf16 = a->kind == SS_WEIGHTS_BF16;
    v->per_channel = v->from_bf16 ? a->arch != SS_ARCH_BITNET : a->per_channel;
    v->use_ref = v->from_bf16 && !ties_by_index(v->slid);
    if (!v->from_bf16 && a->weight_dtype != v->qdt)
        return ss_fail(SS_EFORMAT, "%s: quantized to %s but %s holds %s weights", o->dense_dir,
                       ss_dtype_name(a->weight_dtype), o->slid_dir, ss_dtype_name(v->qdt));
    return ss_context_create(-1, &v->ctx);
}

static ss_status find_2(const ss_checkpoint *ck, const char *name, ss_dtype dt, int64_t n, int64_t k,
                        const ss_st_entry **out) {
    const ss_st_entry *e = ss_checkpoint_find(ck, name);
    if (!e)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s' missing", ss_checkpoint_dir(ck), name);
    int ok = (dt == SS_DTYPE_COUNT ? ss_dtype_is_dense_float(e->dtype) : e->dtype == dt) && e->ndim == (k ? 2 : 1) && e->shape[0] == n && (!k || e->shape[1] == k);
    if (!ok)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected %s [%lld%s%lld], found %s with %d dims "
                       "[%lld, ...]", e->file, name, dt == SS_DTYPE_COUNT ? "BF16|F16|F32" : ss_dtype_name(dt), (long long)n, k ? ", " : "",
                       (long long)k, ss_dtype_name(e->dtype), e->ndim, (long long)e->shape[0]);
    *out = e;
    return SS_OK;
}

/* Random BF16 activations: the same generator synth uses. */
static void random_x(uint64_t seed, const char *name, uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] = ss_f32_to_bf16(ss_synth_value(seed, name, (uint64_t)i, 0.0f, 1.0f));
}

static void linear_check(verifier *v, const char *name, int64_t n, int64_t k, const uint8_t *pruned,
                         const uint8_t *slid, const float *scale, ss_verify_row *r) {
    int64_t rows = v->o->linear_rows > 0 && v->o->linear_rows < n ? v->o->linear_rows : n;
    int64_t m = v->o->linear_m > 0 ? v->o->linear_m : 2;
    ss_linear *ld = NULL, *ls = NULL;
    uint16_t *x = malloc((size_t)(m * k) * 2);
    float *yd = malloc((size_t)(m * rows) * sizeof *yd), *ys = malloc((size_t)(m * rows) * sizeof *ys);
    r->linear_ok = 0;
    if (!x || !yd || !ys) {
        r->note = "out of memory for the linear check";
        goto done;
    }
    random_x(v->o->seed, name, x, m * k);
    ss_linear_desc dd = ss_linear_desc_default(name, rows, k, v->qdt);
    dd.out_dtype = SS_DTYPE_F32;
    dd.per_channel = v->per_channel;
    ss_linear_desc ds = dd;
    ds.pattern = v->pat;
    ss_linear_weights wd = {pruned, scale, NULL}, ws = {slid, scale, NULL};
    if (ss_linear_create(v->ctx, SS_BACKEND_CPU, &dd, &wd, &ld) != SS_OK ||
        ss_linear_create(v->ctx, SS_BACKEND_CPU, &ds, &ws, &ls) != SS_OK ||
        ss_linear_forward(ld, x, m, yd) != SS_OK || ss_linear_forward(ls, x, m, ys) != SS_OK) {
        r->note = "ss_linear failed (see the error below the table)";
        goto done;
    }
    double maxdiff = 0, maxy = 0;
    int exact = 1;
    for (int64_t i = 0; i < m * rows; i++) {
        double d = fabs((double)yd[i] - (double)ys[i]);
        exact &= yd[i] == ys[i] || (isnan(yd[i]) && isnan(ys[i]));
        maxdiff = d > maxdiff || isnan(d) ? d : maxdiff;
        maxy = fabs(yd[i]) > maxy ? fabs(yd[i]) : maxy;
    }
    r->max_abs_diff = maxdiff;
    /* INT8 accumulates exactly; FP8 products are exact in F32 but the sum may
     * be ordered differently: allow K roundings of the largest output. */
    r->linear_ok = v->qdt == SS_DTYPE_I8 ? exact : maxdiff <= (double)k * 6e-8 * (maxy + 1e-30);
    if (!r->linear_ok)
        r->note = "slid linear != pruned dense linear";
done:
    ss_linear_destroy(ld);
    ss_linear_destroy(ls);
    free(x);
    free(yd);
    free(ys);
}

static ss_status verify_projection(verifier *v, const ss_expected_tensor *t, int *bad) {
    int64_t n = t->shape[0], k = t->shape[1], kp = ss_slid_k(v->pat, k);
    int64_t ns = v->per_channel ? n : 1;
    const ss_st_entry *de, *se, *dsc = NULL, *ssc;
    char sn[160];
    prep_scale_name(t->name, sn, sizeof sn);
    SS_TRY(find_2(v->dense, t->name, v->from_bf16 ? SS_DTYPE_COUNT : v->qdt, n, k, &de));
    if (!v->from_bf16)
        SS_TRY(find_2(v->dense, sn, SS_DTYPE_F32, ns, 0, &dsc));
    SS_TRY(find_2(v->slid, t->name, v->qdt, n, kp, &se));
    SS_TRY(find_2(v->slid, sn, SS_DTYPE_F32, ns, 0, &ssc));

    ss_status s = SS_OK;
    uint8_t *q = malloc((size_t)(n * k)), *pruned = malloc((size_t)(n * k));
    uint8_t *slid = malloc((size_t)(n * kp)), *un = malloc((size_t)(n * k));
    float *scale = malloc((size_t)ns * sizeof *scale);
    if (!q || !pruned || !slid || !un || !scale) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory verifying '%s'", v->o->dense_dir, t->name);
        goto fail;
    }
    if (v->from_bf16) {
        s = v->per_channel
                ? ss_quant_weight_per_channel(t->name, de->dtype, de->data, n, k, v->qdt, q, scale)
                : ss_quant_weight_ternary(t->name, de->dtype, de->data, n, k, v->qdt, q, scale);
        if (s != SS_OK)
            goto fail;
    } else {
        memcpy(q, de->data, (size_t)(n * k));
        memcpy(scale, dsc->data, (size_t)ns * sizeof *scale);
    }
    memcpy(pruned, q, (size_t)(n * k));
    ps_ctx pc = {v->qdt, v->pat, k, kp, pruned, slid, de->dtype, v->use_ref ? de->data : NULL};
    if ((s = prep_parallel_rows(n, prep_row_block(k), prune_slide_rows, &pc)) != SS_OK)
        goto fail;

    ss_verify_row r = {.name = t->name, .n = n, .k = k, .k_slid = kp, .note = ""};
    r.slide_ok = memcmp(slid, se->data, (size_t)(n * kp)) == 0;
    r.scale_ok = memcmp(scale, ssc->data, (size_t)ns * sizeof *scale) == 0;
    r.valid_24 = ss_check_24(v->qdt, se->data, n, kp, NULL, NULL);
    r.unslide_ok = ss_unslide(v->qdt, se->data, n, k, v->pat, un) == SS_OK &&
                   memcmp(un, pruned, (size_t)(n * k)) == 0;
    ss_clear_error();
    linear_check(v, t->name, n, k, pruned, se->data, (const float *)ssc->data, &r);
    if (!r.unslide_ok)
        r.note = "unslide(slid) != pruned dense";
    if (!r.valid_24)
        r.note = "slid weight is not 2:4-valid";
    if (!r.scale_ok)
        r.note = "weight_scale differs";
    if (!r.slide_ok)
        r.note = "slid bytes != slide(prune(dense))";
    if (!(r.slide_ok && r.scale_ok && r.valid_24 && r.unslide_ok && r.linear_ok))
        (*bad)++;
    if (v->o->row)
        v->o->row(v->o->user, &r);
    prep_release(de->data, de->nbytes);
    prep_release(se->data, se->nbytes);
fail:
    free(q);
    free(pruned);
    free(slid);
    free(un);
    free(scale);
    return s;
}

static ss_status verify_copy(verifier *v, const ss_expected_tensor *t, int *bad) {
    const ss_st_entry *de, *se;
    SS_TRY(find_2(v->dense, t->name, SS_DTYPE_COUNT, t->shape[0], t->ndim == 2 ? t->shape[1] : 0, &de));
    SS_TRY(find_2(v->slid, t->name, SS_DTYPE_BF16, t->shape[0], t->ndim == 2 ? t->shape[1] : 0, &se));
    /* in chunks of elements, releasing pages as we go: an embedding is ~0.7 GB
     * per side; an F16/F32 source is compared after rounding to BF16 */
    int same = 1;
    const size_t chunk = (size_t)16 << 20, es = ss_dtype_size(de->dtype), numel = se->nbytes / 2;
    uint16_t *buf = de->dtype == SS_DTYPE_BF16 ? NULL : malloc(chunk * 2);
    if (de->dtype != SS_DTYPE_BF16 && !buf)
        return ss_fail(SS_ENOMEM, "%s: tensor '%s': out of memory", de->file, t->name);
    for (size_t i = 0; i < numel && same; i += chunk) {
        size_t m = numel - i < chunk ? numel - i : chunk;
        const char *d = (const char *)de->data + i * es, *sd = (const char *)se->data + i * 2;
        if (buf)
            ss_dtype_to_bf16(de->dtype, d, m, buf);
        same = memcmp(buf ? (const void *)buf : d, sd, m * 2) == 0;
        prep_release(d, m * es);
        prep_release(sd, m * 2);
    }
    free(buf);
    if (!same) {
        (*bad)++;
        ss_verify_row r = {.name = t->name, .n = t->shape[0], .k = t->ndim == 2 ? t->shape[1] : 1,
                           .slide_ok = 0, .scale_ok = 1, .valid_24 = 1, .unslide_ok = 1,
                           .linear_ok = 1, .note = "copied tensor differs from the source"};
        if (v->o->row)
            v->o->row(v->o->user, &r);
    }
    prep_release(de->data, de->nbytes);
    prep_release(se->data, se->nbytes);
    return SS_OK;
}

ss_status ss_verify_checkpoint(const ss_verify_opts *o, int *n_bad) {
    verifier v;
    memset(&v, 0, sizeof v);
    v.o = o;
    *n_bad = 0;
    ss_expected_tensor *t = NULL;
    size_t nt = 0;
    ss_status s = open_both(&v);
    if (s != SS_OK || (s = ss_model_tensors(v.dc, &t, &nt)) != SS_OK)
        goto fail;
    int64_t total = 0, done = 0;
    for (size_t i = 0; i < nt; i++)
        total += 2 * t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
    for (size_t i = 0; i < nt && s == SS_OK; i++) {
        s = t[i].role == SS_ROLE_PROJ ? verify_projection(&v, &t[i], n_bad) : verify_copy(&v, &t[i], n_bad);
        done += 2 * t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
        if (o->progress)
            o->progress(o->progress_user, (int64_t)i + 1, (int64_t)nt, done, total);
    }
fail:
    free(t);
    ss_context_destroy(v.ctx);
    ss_checkpoint_close(v.slid);
    ss_checkpoint_close(v.dense);
    return s;
}
