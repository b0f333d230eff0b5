/* The one streaming pass behind quantize and convert: read every input tensor
 * once; quantize each projection once (from its BF16, F16 or F32 values as
 * read) and write it, pruned and slid for every requested pattern, to one
 * streaming writer per output; copy every other tensor, the model's F16 and
 * F32 norms, embeddings and biases rounded to BF16 (the dtype the engine
 * keeps them in), everything else byte for byte. Outputs live in temporary
 * directories until all of them are complete. */
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/cleanup.h"
#include "io/fileutil.h"
#include "slidesparse/quant.h"

#define COPY_CHUNK ((size_t)64 << 20)

typedef struct {
    const prep_job *job;
    ss_checkpoint *ck;
    const ss_model_config *cfg;
    ss_dtype qdt;
    int from_bf16;
    int per_channel;
    char tmp[SS_PREP_MAX_PATTERNS][PREP_PATH_MAX];
    int began[SS_PREP_MAX_PATTERNS];
    char made_parent[SS_PREP_MAX_PATTERNS][PREP_PATH_MAX]; /* removed again on failure */
    ss_st_writer *w[SS_PREP_MAX_PATTERNS];
    json_t *wmap;                        /* name -> shard file (same for every output) */
    int64_t out_bytes[SS_PREP_MAX_PATTERNS];
    uint8_t *q;                          /* (N, K) of the largest projection */
    uint8_t *pruned[SS_PREP_MAX_PATTERNS]; /* (N, K) per output */
    uint8_t *slid[SS_PREP_MAX_PATTERNS];   /* (N, K') per output */
    float *scale;                        /* (N) */
    size_t cap_q, cap_slid, cap_scale;
} engine;

static const char *dtype_word(ss_dtype t) { return t == SS_DTYPE_I8 ? "int8" : "fp8_e4m3"; }

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t o = snprintf(buf, n, "[");
    for (int d = 0; d < ndim && o < n; d++)
        o += snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

// --- validation ------------------------------------------------------------------------------

static ss_status check_tensor(const engine *g, const ss_expected_tensor *x) {
    const char *dir = ss_checkpoint_dir(g->ck);
    const ss_st_entry *e = ss_checkpoint_find(g->ck, x->name);
    if (!e)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s' missing (config.json implies it)", dir, x->name);
    char want[64], got[64];
    shape_text(x->shape, x->ndim, want, sizeof want);
    shape_text(e->shape, e->ndim, got, sizeof got);
    if (e->ndim != x->ndim || e->shape[0] != x->shape[0] || (x->ndim == 2 && e->shape[1] != x->shape[1]))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected shape %s for the config, found %s",
                       e->file, x->name, want, got);
    if (x->role == SS_ROLE_PROJ && !g->from_bf16) {
        if (e->dtype != g->qdt)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected dtype %s (quantization_config), found %s",
                           e->file, x->name, ss_dtype_name(g->qdt), ss_dtype_name(e->dtype));
    } else if (!ss_dtype_is_dense_float(e->dtype)) {
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected dtype BF16, F16 or F32, found %s", e->file,
                       x->name, ss_dtype_name(e->dtype));
    }
    if (x->role != SS_ROLE_PROJ || g->from_bf16)
        return SS_OK;
    char sn[128];
    prep_scale_name(x->name, sn, sizeof sn);
    const ss_st_entry *s = ss_checkpoint_find(g->ck, sn);
    int64_t ns = g->per_channel ? x->shape[0] : 1;
    if (!s)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s' missing (quantized weight '%s' needs it)", dir,
                       sn, x->name);
    if (s->dtype != SS_DTYPE_F32 || s->ndim != 1 || s->shape[0] != ns)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected F32 [%lld], found %s with %d dims",
                       s->file, sn, (long long)ns, ss_dtype_name(s->dtype), s->ndim);
    return SS_OK;
}

static ss_status validate(engine *g) {
    const ss_model_config *c = g->cfg;
    const char *dir = ss_checkpoint_dir(g->ck);
    if (c->kind == SS_WEIGHTS_SLID)
        return ss_fail(SS_EUNSUPPORTED, "%s: already a SlideSparse checkpoint (pattern in config.json); "
                       "convert needs an unquantized (BF16, F16, F32) or quantized one", dir);
    g->from_bf16 = c->kind == SS_WEIGHTS_BF16;
    if (!g->from_bf16 && g->job->require_bf16)
        return ss_fail(SS_EINVAL, "%s: already quantized (%s); %s needs an unquantized (BF16, F16, F32) checkpoint", dir,
                       ss_dtype_name(c->weight_dtype), g->job->cmd);
    if (g->from_bf16) {
        g->qdt = g->job->dtype == SS_DTYPE_COUNT ? SS_DTYPE_I8 : g->job->dtype;
        g->per_channel = c->arch != SS_ARCH_BITNET;
    } else {
        g->qdt = c->weight_dtype;
        g->per_channel = c->per_channel;
        if (g->job->dtype != SS_DTYPE_COUNT && g->job->dtype != g->qdt)
            return ss_fail(SS_EINVAL, "%s: checkpoint is quantized to %s, --dtype asks for %s", dir,
                           ss_dtype_name(g->qdt), ss_dtype_name(g->job->dtype));
    }
    if (g->qdt != SS_DTYPE_I8 && g->qdt != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "%s: weight dtype %s: expected I8 or F8_E4M3", dir,
                       ss_dtype_name(g->qdt));
    ss_expected_tensor *x = NULL;
    size_t n = 0;
    SS_TRY(ss_model_tensors(c, &x, &n));
    ss_status s = SS_OK;
    size_t max_nk = 0, max_slid = 0, max_n = 0;
    for (size_t i = 0; i < n && s == SS_OK; i++) {
        s = check_tensor(g, &x[i]);
        if (x[i].role != SS_ROLE_PROJ)
            continue;
        int64_t N = x[i].shape[0], K = x[i].shape[1];
        if ((size_t)(N * K) > max_nk)
            max_nk = (size_t)(N * K);
        if ((size_t)N > max_n)
            max_n = (size_t)N;
        for (int p = 0; p < g->job->n_out; p++) {
            int64_t kp = ss_pattern_is_dense(g->job->pat[p]) ? K : ss_slid_k(g->job->pat[p], K);
            if ((size_t)(N * kp) > max_slid)
                max_slid = (size_t)(N * kp);
        }
    }
    free(x);
    if (s != SS_OK)
        return s;
    g->q = malloc(max_nk ? max_nk : 1);
    g->scale = malloc((max_n ? max_n : 1) * sizeof *g->scale);
    int ok = g->q && g->scale;
    for (int p = 0; p < g->job->n_out; p++) {
        if (ss_pattern_is_dense(g->job->pat[p]))
            continue;
        g->pruned[p] = malloc(max_nk ? max_nk : 1);
        g->slid[p] = malloc(max_slid ? max_slid : 1);
        ok = ok && g->pruned[p] && g->slid[p];
    }
    if (!ok)
        return ss_fail(SS_ENOMEM, "%s: out of memory for %zu-byte projection buffers", dir, max_slid);
    return SS_OK;
}

// --- declaring the outputs --------------------------------------------------------------------------

/* A model tensor other than a projection held in F16 or F32: written as BF16. */
static int to_bf16_copy(const ss_st_entry *e) {
    return (e->dtype == SS_DTYPE_F16 || e->dtype == SS_DTYPE_F32) && ss_tensor_role_of(e->name) != SS_ROLE_COUNT;
}

static ss_status declare_shard(engine *g, const prep_shard *sh) {
    for (size_t i = 0; i < sh->n; i++) {
        const ss_st_entry *e = sh->e[i];
        if (prep_is_scale_name(e->name))
            continue; /* re-emitted right after its weight */
        int proj = ss_tensor_role_of(e->name) == SS_ROLE_PROJ && e->ndim == 2;
        json_object_set_new(g->wmap, e->name, json_string(sh->file));
        char sn[160];
        prep_scale_name(e->name, sn, sizeof sn);
        if (proj)
            json_object_set_new(g->wmap, sn, json_string(sh->file));
        for (int p = 0; p < g->job->n_out; p++) {
            if (!proj) {
                int bf = to_bf16_copy(e);
                SS_TRY(ss_st_writer_declare(g->w[p], e->name, bf ? SS_DTYPE_BF16 : e->dtype, e->ndim, e->shape));
                g->out_bytes[p] += (int64_t)(bf ? e->nbytes / ss_dtype_size(e->dtype) * 2 : e->nbytes);
                continue;
            }
            ss_pattern pat = g->job->pat[p];
            int64_t shape[2] = {e->shape[0], ss_pattern_is_dense(pat) ? e->shape[1]
                                                                      : ss_slid_k(pat, e->shape[1])};
            int64_t ns = g->per_channel ? e->shape[0] : 1;
            SS_TRY(ss_st_writer_declare(g->w[p], e->name, g->qdt, 2, shape));
            SS_TRY(ss_st_writer_declare(g->w[p], sn, SS_DTYPE_F32, 1, &ns));
            g->out_bytes[p] += shape[0] * shape[1] + 4 * ns;
        }
    }
    return SS_OK;
}

// --- one projection ------------------------------------------------------------------------------------

static ss_status with_file(ss_status s, const ss_st_entry *e) {
    if (s == SS_OK || s == SS_ENOSPC || s == SS_EIO)
        return s;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ss_last_error());
    if (strstr(msg, e->file))
        return s;
    return ss_fail(s, "%s: %s", e->file, msg);
}

/* Output p of one projection: prune + slide (or the quantized weight as is),
 * then the scale. Runs on one thread per output when there are several, so
 * the outputs' writes overlap each other's compute. */
static ss_status emit(engine *g, int p, const ss_st_entry *e, const uint8_t *q, const float *scale) {
    int64_t n = e->shape[0], k = e->shape[1];
    int64_t ns = g->per_channel ? n : 1;
    ss_pattern pat = g->job->pat[p];
    if (ss_pattern_is_dense(pat)) {
        SS_TRY(ss_st_writer_write(g->w[p], q, (size_t)(n * k)));
    } else {
        int64_t kp = ss_slid_k(pat, k);
        memcpy(g->pruned[p], q, (size_t)(n * k));
        SS_TRY(with_file(ss_prune(g->qdt, g->pruned[p], n, k, pat, e->dtype,
                                  g->from_bf16 ? e->data : NULL), e));
        SS_TRY(with_file(ss_slide(g->qdt, g->pruned[p], n, k, pat, g->slid[p]), e));
        SS_TRY(ss_st_writer_write(g->w[p], g->slid[p], (size_t)(n * kp)));
    }
    return ss_st_writer_write(g->w[p], scale, (size_t)ns * sizeof *scale);
}

typedef ss_status (*per_output_fn)(engine *g, int p, const void *arg);

/* fn for every output p, one thread per output when there are several; the
 * first failure (by the time it is seen) is returned with its message. */
static ss_status each_output(engine *g, per_output_fn fn, const void *arg) {
    if (g->job->n_out == 1)
        return fn(g, 0, arg);
    ss_status first = SS_OK;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 1)
    for (int p = 0; p < g->job->n_out; p++) {
        ss_status s = fn(g, p, arg);
        if (s != SS_OK) {
#pragma omp critical(prep_emit_error)
            if (first == SS_OK) {
                first = s;
                snprintf(msg, sizeof msg, "%s", ss_last_error());
            }
        }
    }
    return first == SS_OK ? SS_OK : ss_fail(first, "%s", msg);
}

typedef struct {
    const ss_st_entry *e;
    const uint8_t *q;
    const float *scale;
} emit_arg;

static ss_status emit_one(engine *g, int p, const void *arg) {
    const emit_arg *a = arg;
    return emit(g, p, a->e, a->q, a->scale);
}

typedef struct {
    const void *data;
    size_t n;
} copy_arg;

static ss_status copy_one(engine *g, int p, const void *arg) {
    const copy_arg *a = arg;
    return ss_st_writer_write(g->w[p], a->data, a->n);
}

/* The same data to every output, one thread per output. */
static ss_status copy_all(engine *g, const void *data, size_t n) {
    return each_output(g, copy_one, &(copy_arg){.data = data, .n = n});
}

/* Every tensor must hold finite values: a NaN in a norm or an embedding would
 * be copied silently and turn every later output into NaN. Checks the bytes
 * [off, off + n) of e (whole elements), so a copy can check chunk by chunk
 * and stay streaming. */
static ss_status check_finite(const ss_st_entry *e, size_t off, size_t n) {
    size_t es = ss_dtype_size(e->dtype);
    int64_t at, cols = e->ndim >= 2 ? e->shape[e->ndim - 1] : 1;
    int kind = ss_find_nonfinite(e->dtype, (const uint8_t *)e->data + off, (int64_t)(n / es), &at);
    if (!kind)
        return SS_OK;
    at += (int64_t)(off / es);
    char where[64];
    if (e->ndim >= 2 && cols > 0)
        snprintf(where, sizeof where, "row %lld, column %lld", (long long)(at / cols),
                 (long long)(at % cols));
    else
        snprintf(where, sizeof where, "element %lld", (long long)at);
    return ss_fail(SS_EINVAL, "%s: tensor '%s': expected finite values, found %s at %s", e->file,
                   e->name, kind == 2 ? "NaN" : "Inf", where);
}

static ss_status do_projection(engine *g, const ss_st_entry *e) {
    int64_t n = e->shape[0], k = e->shape[1];
    const uint8_t *q = g->q;
    const float *scale = g->scale;
    if (g->from_bf16) {
        if (g->per_channel)
            SS_TRY(with_file(ss_quant_weight_per_channel(e->name, e->dtype, e->data, n, k, g->qdt,
                                                         g->q, g->scale), e));
        else
            SS_TRY(with_file(ss_quant_weight_ternary(e->name, e->dtype, e->data, n, k, g->qdt,
                                                     g->q, g->scale), e));
    } else {
        char sn[160];
        prep_scale_name(e->name, sn, sizeof sn);
        const ss_st_entry *se = ss_checkpoint_find(g->ck, sn);
        SS_TRY(check_finite(e, 0, e->nbytes));
        SS_TRY(check_finite(se, 0, se->nbytes));
        q = e->data;
        scale = se->data;
    }
    return each_output(g, emit_one, &(emit_arg){.e = e, .q = q, .scale = scale});
}

/* An F16/F32 copy rounds to BF16 chunk by chunk; a finite F32 beyond the
 * BF16 range would become Inf and is refused like one. */
static ss_status copy_bf16_chunk(engine *g, const ss_st_entry *e, size_t off, size_t m, uint16_t *buf) {
    size_t es = ss_dtype_size(e->dtype), cnt = m / es;
    int64_t at;
    ss_dtype_to_bf16(e->dtype, (const uint8_t *)e->data + off, cnt, buf);
    if (ss_find_nonfinite(SS_DTYPE_BF16, buf, (int64_t)cnt, &at))
        return ss_fail(SS_EINVAL, "%s: tensor '%s': element %lld (%g) is outside the BF16 range",
                       e->file, e->name, (long long)(at + (int64_t)(off / es)),
                       ss_dtype_load(e->dtype, e->data, (size_t)at + off / es));
    return copy_all(g, buf, cnt * 2);
}

static ss_status do_copy(engine *g, const ss_st_entry *e) {
    const uint8_t *d = e->data;
    uint16_t *buf = NULL;
    /* (chunk) BF16 output never needs more bytes than its input chunk */
    if (to_bf16_copy(e) && !(buf = malloc(e->nbytes < COPY_CHUNK ? e->nbytes + 2 : COPY_CHUNK)))
        return ss_fail(SS_ENOMEM, "%s: tensor '%s': out of memory", e->file, e->name);
    ss_status s = SS_OK;
    for (size_t off = 0; off < e->nbytes && s == SS_OK; off += COPY_CHUNK) {
        size_t m = e->nbytes - off < COPY_CHUNK ? e->nbytes - off : COPY_CHUNK;
        if ((s = check_finite(e, off, m)) == SS_OK)
            s = buf ? copy_bf16_chunk(g, e, off, m, buf) : copy_all(g, d + off, m);
        prep_release(d + off, m);
    }
    free(buf);
    return s;
}

// --- config.json and index ---------------------------------------------------------------------------------

static ss_status write_config(engine *g, int p, const ss_expected_tensor *x, size_t nx) {
    const char *text = ss_checkpoint_config_json(g->ck);
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return ss_fail(SS_EFORMAT, "%s/config.json: not a JSON object", ss_checkpoint_dir(g->ck));
    }
    /* Our block for a new quantization, and in place of a compressed-tensors
     * one: the outputs hold our layout (weight_scale F32 [N]). */
    if (g->from_bf16 || g->cfg->quant_source == SS_QUANT_SOURCE_COMPRESSED_TENSORS) {
        const char *dt = dtype_word(g->qdt);
        json_t *qc = json_pack("{s:s, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b}}", "quant_method",
                               "slidesparse", "weights", "dtype", dt, "scheme",
                               g->per_channel ? "per_channel" : "per_tensor", "static", 1,
                               "activations", "dtype", dt, "scheme", "per_token", "dynamic", 1);
        if (qc && !g->from_bf16)
            json_object_set_new(qc, "source", json_pack("{s:s, s:s}", "quant_method", "compressed-tensors",
                                                        "format", g->cfg->quant_format));
        json_object_set_new(j, "quantization_config", qc);
    }
    ss_pattern pat = g->job->pat[p];
    if (!ss_pattern_is_dense(pat)) {
        char name[32];
        ss_pattern_format(pat, name, sizeof name);
        json_t *tensors = json_object();
        for (size_t i = 0; i < nx; i++)
            if (x[i].role == SS_ROLE_PROJ)
                json_object_set_new(tensors, x[i].name,
                                    json_pack("{s:I, s:I}", "K", (json_int_t)x[i].shape[1], "K_slid",
                                              (json_int_t)ss_slid_k(pat, x[i].shape[1])));
        json_object_set_new(j, "slidesparse",
                            json_pack("{s:s, s:i, s:i, s:o, s:s, s:s, s:s}", "pattern", name, "Z",
                                      pat.z, "L", pat.l, "tensors", tensors, "source",
                                      g->job->source ? g->job->source : ss_checkpoint_dir(g->ck),
                                      "version", SS_VERSION_STRING,
                                      "tie_break", g->from_bf16 ? "bf16" : "index"));
    }
    char path[PREP_PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", g->tmp[p]);
    ss_status s = prep_write_json(path, j, 0);
    json_decref(j);
    return s;
}

static ss_status write_index(engine *g, int p) {
    json_t *j = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)g->out_bytes[p],
                          "weight_map", g->wmap);
    char path[PREP_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", g->tmp[p]);
    ss_status s = j ? prep_write_json(path, j, 1) : ss_fail(SS_ENOMEM, "%s: out of memory", path);
    json_decref(j);
    return s;
}

// --- the pass ------------------------------------------------------------------------------------------------

static ss_status run_shards(engine *g, const prep_layout *l) {
    int64_t done = 0, i = 0;
    for (size_t s = 0; s < l->n_shards; s++) {
        const prep_shard *sh = &l->shards[s];
        for (int p = 0; p < g->job->n_out; p++) {
            char path[PREP_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", g->tmp[p], sh->file);
            SS_TRY(ss_st_writer_open(path, &g->w[p]));
            SS_TRY(ss_st_writer_set_metadata(g->w[p], "format", "pt"));
        }
        SS_TRY(declare_shard(g, sh));
        for (size_t t = 0; t < sh->n; t++) {
            const ss_st_entry *e = sh->e[t];
            if (prep_is_scale_name(e->name)) {
                /* written with its weight */
            } else if (ss_tensor_role_of(e->name) == SS_ROLE_PROJ && e->ndim == 2) {
                SS_TRY(do_projection(g, e));
                prep_release(e->data, e->nbytes);
            } else {
                SS_TRY(do_copy(g, e));
            }
            done += (int64_t)e->nbytes;
            if (g->job->progress)
                g->job->progress(g->job->user, ++i, (int64_t)l->n_tensors, done, l->total_bytes);
        }
        for (int p = 0; p < g->job->n_out; p++) {
            ss_status st = ss_st_writer_close(g->w[p]);
            g->w[p] = NULL;
            SS_TRY(st);
        }
    }
    return SS_OK;
}

ss_status prep_run(const prep_job *job) {
    engine g;
    memset(&g, 0, sizeof g);
    g.job = job;
    prep_layout l = {0};
    ss_expected_tensor *x = NULL;
    size_t nx = 0;
    int made_slot[SS_PREP_MAX_PATTERNS];
    ss_status s = SS_OK;
    for (int p = 0; p < job->n_out; p++) {
        made_slot[p] = -1;
        if (s == SS_OK)
            s = ss_outdir_check_input(job->final_dir[p], job->in_dir, 1);
    }
    if (s != SS_OK || (s = ss_checkpoint_open(job->in_dir, &g.ck)) != SS_OK)
        goto fail;
    g.cfg = ss_checkpoint_config(g.ck);
    if ((s = validate(&g)) != SS_OK || (s = prep_layout_build(g.ck, &l)) != SS_OK ||
        (s = ss_model_tensors(g.cfg, &x, &nx)) != SS_OK)
        goto fail;
    for (int p = 0; p < job->n_out; p++) {
        if ((s = ss_mkdir_parents(job->final_dir[p], g.made_parent[p], PREP_PATH_MAX)) != SS_OK)
            goto fail;
        made_slot[p] = ss_cleanup_add(g.made_parent[p], SS_CLEANUP_EMPTY_DIRS);
        if ((s = ss_outdir_begin(job->final_dir[p], job->force, "config.json", g.tmp[p],
                                   PREP_PATH_MAX)) != SS_OK)
            goto fail;
        g.began[p] = 1;
    }
    if (!(g.wmap = json_object())) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory", job->in_dir);
        goto fail;
    }
    if ((s = run_shards(&g, &l)) != SS_OK)
        goto fail;
    for (int p = 0; p < job->n_out; p++) {
        if ((s = write_config(&g, p, x, nx)) != SS_OK ||
            (l.indexed && (s = write_index(&g, p)) != SS_OK) ||
            (s = prep_copy_side_files(job->in_dir, g.tmp[p])) != SS_OK)
            goto fail;
    }
    for (int p = 0; p < job->n_out; p++) {
        if ((s = ss_outdir_commit(g.tmp[p], job->final_dir[p], job->force)) != SS_OK)
            goto fail;
        g.began[p] = 0;
    }
fail:
    for (int p = 0; p < job->n_out; p++) {
        ss_st_writer_abort(g.w[p]);
        if (g.began[p])
            ss_outdir_abort(g.tmp[p]);
    }
    for (int p = job->n_out - 1; p >= 0; p--) {
        ss_cleanup_del(made_slot[p]);
        if (s != SS_OK && g.made_parent[p][0]) {
            /* only empty folders: another pattern's committed output may be there */
            char dir[PREP_PATH_MAX];
            ss_path_parent(job->final_dir[p], dir, sizeof dir);
            ss_rmdir_made(dir, g.made_parent[p]);
        }
    }
    json_decref(g.wmap);
    free(g.q);
    for (int p = 0; p < job->n_out; p++) {
        free(g.pruned[p]);
        free(g.slid[p]);
    }
    free(g.scale);
    free(x);
    prep_layout_free(&l);
    ss_checkpoint_close(g.ck);
    return s;
}
