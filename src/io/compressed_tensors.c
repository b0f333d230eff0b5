/* compressed-tensors (llm-compressor) W8A8 checkpoints, read as ours.
 *
 * Accepted quantization_config (fields not listed are ignored):
 *   quant_method   "compressed-tensors"
 *   format         "int-quantized" | "float-quantized" | "naive-quantized"
 *                  (top level or per group; "mixed-precision" at the top
 *                  level defers to the groups)
 *   config_groups  { name: { "weights": W, "input_activations": A,
 *                            "output_activations": null, "format": ... } }
 *                  one or more groups, all of one weight type
 *     W  num_bits 8; type "int" (-> I8) or "float" (-> F8_E4M3); symmetric
 *        true; strategy "channel" (weight_scale [N, 1]) or "tensor" ([1]);
 *        dynamic false; group_size, block_structure, actorder null or absent
 *     A  num_bits 8; type as W; symmetric true; dynamic true; strategy "token"
 *        (the per-token quantization of SPEC §4)
 *   kv_cache_scheme null or absent
 * The tensors keep Hugging Face's names: "<layer>.weight" in I8 / F8_E4M3 and
 * "<layer>.weight_scale" in BF16, F16 or F32, with w ~= q * scale per output
 * channel: the meaning of our own weight_scale, so only the shape [N, 1] ->
 * [N] and the dtype (-> F32, exact) change. Tensors of schemes we do not run
 * (weight_zero_point, input_scale, input_zero_point, output_scale,
 * weight_g_idx, weight_packed, weight_shape, k_scale, v_scale) are refused.
 */
#include "compressed_tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/json_util.h"

#define CT "quantization_config"

// --- config ------------------------------------------------------------------------------

static int is_absent_or_null(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return !v || json_is_null(v);
}

static ss_status check_format(const char *label, const char *path, json_t *v, int top) {
    if (!v || json_is_null(v))
        return SS_OK;
    const char *f = json_string_value(v);
    if (!f)
        return ss_fail(SS_EFORMAT, "%s: field '%sformat' must be a string, found %s", label, path,
                       ss_json_type_word(v));
    if (!strcmp(f, "int-quantized") || !strcmp(f, "float-quantized") || !strcmp(f, "naive-quantized") ||
        (top && !strcmp(f, "mixed-precision")))
        return SS_OK;
    return ss_fail(SS_EUNSUPPORTED, "%s: %sformat '%.40s' is not supported (int-quantized, float-quantized "
                   "or naive-quantized 8-bit weights are)", label, path, f);
}

/* num_bits 8, symmetric, the expected type ("int" / "float"; *type NULL: any, set). */
static ss_status check_args(const char *label, const char *path, json_t *a, const char **type) {
    json_t *bits = json_object_get(a, "num_bits"), *t = json_object_get(a, "type");
    if (!json_is_integer(bits) || json_integer_value(bits) != 8)
        return ss_fail(SS_EUNSUPPORTED, "%s: %snum_bits is %lld: only 8-bit quantization is supported", label,
                       path, json_is_integer(bits) ? (long long)json_integer_value(bits) : -1LL);
    const char *ts = json_string_value(t);
    if (!ts || (strcmp(ts, "int") && strcmp(ts, "float")))
        return ss_fail(SS_EUNSUPPORTED, "%s: %stype must be 'int' or 'float', found %s", label, path,
                       ts ? ts : ss_json_type_word(t));
    if (*type && strcmp(*type, ts))
        return ss_fail(SS_EUNSUPPORTED, "%s: %stype '%s' differs from the weights' '%s': the GEMM multiplies "
                       "operands of one dtype", label, path, ts, *type);
    *type = ts;
    json_t *sym = json_object_get(a, "symmetric");
    if (sym && !json_is_true(sym))
        return ss_fail(SS_EUNSUPPORTED, "%s: %ssymmetric is false: asymmetric quantization (zero points) "
                       "is not supported", label, path);
    return SS_OK;
}

static ss_status check_weights(const char *label, const char *path, json_t *w, const char **type,
                               int *per_channel) {
    if (!json_is_object(w))
        return ss_fail(SS_EUNSUPPORTED, "%s: %s is %s: expected an object (8-bit weights)", label, path,
                       w ? ss_json_type_word(w) : "missing");
    char p[256];
    snprintf(p, sizeof p, "%s.", path);
    SS_TRY(check_args(label, p, w, type));
    const char *st = json_string_value(json_object_get(w, "strategy"));
    if (!st || (strcmp(st, "channel") && strcmp(st, "tensor")))
        return ss_fail(SS_EUNSUPPORTED, "%s: %sstrategy is '%.32s': only 'channel' or 'tensor' weight scales "
                       "are supported (not group- or block-wise)", label, p, st ? st : "?");
    static const char *const none[] = {"group_size", "block_structure", "actorder"};
    for (int i = 0; i < 3; i++)
        if (!is_absent_or_null(w, none[i]))
            return ss_fail(SS_EUNSUPPORTED, "%s: %s%s is set: group-wise scales and activation ordering are "
                           "not supported", label, p, none[i]);
    json_t *dyn = json_object_get(w, "dynamic");
    if (dyn && !json_is_false(dyn))
        return ss_fail(SS_EUNSUPPORTED, "%s: %sdynamic is not false: weight scales must be stored", label, p);
    *per_channel = strcmp(st, "channel") == 0;
    return SS_OK;
}

static ss_status check_activations(const char *label, const char *path, json_t *a, const char **type) {
    if (!a || json_is_null(a))
        return ss_fail(SS_EUNSUPPORTED, "%s: %s is null: weight-only quantization is not supported (the GEMM "
                       "needs 8-bit activations, dynamic per token)", label, path);
    if (!json_is_object(a))
        return ss_fail(SS_EFORMAT, "%s: %s must be an object, found %s", label, path, ss_json_type_word(a));
    char p[256];
    snprintf(p, sizeof p, "%s.", path);
    SS_TRY(check_args(label, p, a, type));
    if (!json_is_true(json_object_get(a, "dynamic")))
        return ss_fail(SS_EUNSUPPORTED, "%s: %sdynamic is not true: static activation scales are not "
                       "supported (only dynamic per-token)", label, p);
    const char *st = json_string_value(json_object_get(a, "strategy"));
    if (!st || strcmp(st, "token"))
        return ss_fail(SS_EUNSUPPORTED, "%s: %sstrategy is '%.32s': only 'token' (dynamic per-token) "
                       "activation scales are supported", label, p, st ? st : "?");
    return SS_OK;
}

static ss_status check_group(const char *label, const char *name, json_t *g, const char **type,
                             int *per_channel) {
    char p[128], q[192];
    snprintf(p, sizeof p, CT ".config_groups.%.60s", name);
    if (!json_is_object(g))
        return ss_fail(SS_EFORMAT, "%s: %s must be an object, found %s", label, p, ss_json_type_word(g));
    snprintf(q, sizeof q, "%s.", p);
    SS_TRY(check_format(label, q, json_object_get(g, "format"), 0));
    const char *wtype = *type;
    int pc = 1;
    snprintf(q, sizeof q, "%s.weights", p);
    SS_TRY(check_weights(label, q, json_object_get(g, "weights"), &wtype, &pc));
    if (*type && *per_channel != pc)
        return ss_fail(SS_EUNSUPPORTED, "%s: %s.strategy differs between config groups", label, q);
    *type = wtype;
    *per_channel = pc;
    snprintf(q, sizeof q, "%s.input_activations", p);
    SS_TRY(check_activations(label, q, json_object_get(g, "input_activations"), &wtype));
    if (!is_absent_or_null(g, "output_activations"))
        return ss_fail(SS_EUNSUPPORTED, "%s: %s.output_activations is set: output quantization is not "
                       "supported", label, p);
    return SS_OK;
}

ss_status ss_ct_parse_config(const char *label, json_t *q, ss_model_config *c) {
    json_t *fmt = json_object_get(q, "format");
    SS_TRY(check_format(label, CT ".", fmt, 1));
    if (!is_absent_or_null(q, "kv_cache_scheme"))
        return ss_fail(SS_EUNSUPPORTED, "%s: " CT ".kv_cache_scheme is set: KV-cache quantization is not "
                       "supported", label);
    json_t *groups = json_object_get(q, "config_groups");
    if (!json_is_object(groups) || json_object_size(groups) == 0)
        return ss_fail(SS_EFORMAT, "%s: " CT ".config_groups must be a non-empty object", label);
    const char *type = NULL, *name;
    int per_channel = 1;
    json_t *g;
    json_object_foreach(groups, name, g) SS_TRY(check_group(label, name, g, &type, &per_channel));
    c->kind = SS_WEIGHTS_QUANTIZED;
    c->weight_dtype = strcmp(type, "int") == 0 ? SS_DTYPE_I8 : SS_DTYPE_F8_E4M3;
    c->per_channel = per_channel;
    c->quant_source = SS_QUANT_SOURCE_COMPRESSED_TENSORS;
    const char *f = json_string_value(fmt);
    snprintf(c->quant_format, sizeof c->quant_format, "%s",
             f && strcmp(f, "mixed-precision") ? f : type[0] == 'i' ? "int-quantized" : "float-quantized");
    return SS_OK;
}

// --- tensors -----------------------------------------------------------------------------

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const struct {
    const char *suffix, *why;
} refused[] = {
    {".weight_zero_point", "zero points (asymmetric quantization) are not supported"},
    {".input_scale", "static activation scales are not supported (only dynamic per-token)"},
    {".input_zero_point", "static activation zero points are not supported"},
    {".output_scale", "output quantization is not supported"},
    {".weight_g_idx", "activation ordering (g_idx) is not supported"},
    {".weight_packed", "packed (4-bit) weights are not supported"},
    {".weight_shape", "packed (4-bit) weights are not supported"},
    {".k_scale", "KV-cache quantization is not supported"},
    {".v_scale", "KV-cache quantization is not supported"},
};

/* weight_scale [N, 1], [N], [1] or [] in BF16 / F16 / F32 -> F32 [numel]. */
static ss_status map_scale(const ss_st_entry *e, ss_st_entry *out) {
    int64_t numel = e->ndim == 0 ? 1 : e->shape[0];
    if (e->ndim > 2 || (e->ndim == 2 && e->shape[1] != 1))
        return ss_fail(SS_EUNSUPPORTED, "%s: tensor '%s': expected a scale of shape [N, 1] or [1], found %d dims "
                       "[%lld, %lld]: group-wise scales are not supported", e->file, e->name, e->ndim,
                       (long long)e->shape[0], (long long)(e->ndim == 2 ? e->shape[1] : 0));
    if (!ss_dtype_is_dense_float(e->dtype))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected dtype BF16, F16 or F32, found %s", e->file, e->name,
                       ss_dtype_name(e->dtype));
    float *d = malloc((size_t)(numel > 0 ? numel : 1) * sizeof *d);
    if (!d)
        return ss_fail(SS_ENOMEM, "%s: tensor '%s': out of memory", e->file, e->name);
    for (int64_t i = 0; i < numel; i++)
        d[i] = (float)ss_dtype_load(e->dtype, e->data, (size_t)i); /* exact: every source fits F32 */
    *out = *e;
    out->dtype = SS_DTYPE_F32;
    out->ndim = 1;
    out->shape[0] = numel;
    out->shape[1] = 0;
    out->data = d;
    out->nbytes = (size_t)numel * sizeof *d;
    return SS_OK;
}

ss_status ss_ct_map_entries(const char *dir, const ss_st_entry **entries, size_t n, ss_st_entry **owned,
                            size_t *n_owned) {
    (void)dir;
    *owned = NULL;
    *n_owned = 0;
    size_t n_scales = 0;
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = entries[i];
        for (size_t r = 0; r < sizeof refused / sizeof refused[0]; r++)
            if (ends_with(e->name, refused[r].suffix))
                return ss_fail(SS_EUNSUPPORTED, "%s: tensor '%s': %s", e->file, e->name, refused[r].why);
        n_scales += ends_with(e->name, ".weight_scale");
    }
    ss_st_entry *m = calloc(n_scales ? n_scales : 1, sizeof *m);
    if (!m)
        return ss_fail(SS_ENOMEM, "%s: out of memory", dir);
    ss_status s = SS_OK;
    size_t k = 0;
    for (size_t i = 0; i < n && s == SS_OK; i++) {
        if (!ends_with(entries[i]->name, ".weight_scale"))
            continue;
        if ((s = map_scale(entries[i], &m[k])) == SS_OK)
            entries[i] = &m[k++];
    }
    *owned = m;
    *n_owned = k;
    return s;
}

void ss_ct_free(ss_st_entry *owned, size_t n_owned) {
    for (size_t i = 0; owned && i < n_owned; i++)
        free((void *)owned[i].data);
    free(owned);
}
