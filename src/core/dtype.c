/* Element types: sizes, safetensors names, parsing, exact float conversions
 * (thin wrappers over core/dtype_inline.h) and reading one element as double. */
#include "core/dtype_inline.h"
#include "core/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// --- names and sizes -------------------------------------------------------------

static const char *const dtype_names[SS_DTYPE_COUNT] = {
    [SS_DTYPE_BF16] = "BF16",       [SS_DTYPE_F16] = "F16",         [SS_DTYPE_F32] = "F32",
    [SS_DTYPE_F64] = "F64",         [SS_DTYPE_I8] = "I8",           [SS_DTYPE_U8] = "U8",
    [SS_DTYPE_I16] = "I16",         [SS_DTYPE_I32] = "I32",         [SS_DTYPE_I64] = "I64",
    [SS_DTYPE_BOOL] = "BOOL",       [SS_DTYPE_F8_E4M3] = "F8_E4M3", [SS_DTYPE_F8_E5M2] = "F8_E5M2",
};

static const unsigned char dtype_sizes[SS_DTYPE_COUNT] = {
    [SS_DTYPE_BF16] = 2, [SS_DTYPE_F16] = 2,  [SS_DTYPE_F32] = 4,  [SS_DTYPE_F64] = 8,
    [SS_DTYPE_I8] = 1,   [SS_DTYPE_U8] = 1,   [SS_DTYPE_I16] = 2,  [SS_DTYPE_I32] = 4,
    [SS_DTYPE_I64] = 8,  [SS_DTYPE_BOOL] = 1, [SS_DTYPE_F8_E4M3] = 1, [SS_DTYPE_F8_E5M2] = 1,
};

/* The command line spells the common types in lower case, as users type them. */
static const struct {
    const char *alias;
    ss_dtype dtype;
} dtype_aliases[] = {
    {"int8", SS_DTYPE_I8},  {"fp8", SS_DTYPE_F8_E4M3}, {"bf16", SS_DTYPE_BF16},
    {"fp16", SS_DTYPE_F16}, {"fp32", SS_DTYPE_F32},
};
#define N_ALIASES (sizeof dtype_aliases / sizeof dtype_aliases[0])

size_t ss_dtype_size(ss_dtype t) { return (unsigned)t < SS_DTYPE_COUNT ? dtype_sizes[t] : 0; }

const char *ss_dtype_name(ss_dtype t) { return (unsigned)t < SS_DTYPE_COUNT ? dtype_names[t] : "UNKNOWN"; }

ss_status ss_dtype_parse(const char *s, ss_dtype *out) {
    if (!s || !out)
        return ss_fail(SS_EINVAL, "ss_dtype_parse: expected a dtype string and an output, found NULL");
    for (int t = 0; t < SS_DTYPE_COUNT; t++)
        if (strcmp(s, dtype_names[t]) == 0) {
            *out = (ss_dtype)t;
            return SS_OK;
        }
    for (size_t i = 0; i < N_ALIASES; i++)
        if (strcmp(s, dtype_aliases[i].alias) == 0) {
            *out = dtype_aliases[i].dtype;
            return SS_OK;
        }
    /* The message lists every accepted spelling so the user can fix the typo. */
    char valid[256];
    size_t n = 0;
    valid[0] = '\0';
    for (int t = 0; t < SS_DTYPE_COUNT; t++)
        n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%s", t ? ", " : "", dtype_names[t]);
    for (size_t i = 0; i < N_ALIASES && n < sizeof valid; i++)
        n += (size_t)snprintf(valid + n, sizeof valid - n, ", %s", dtype_aliases[i].alias);
    return ss_fail(SS_EINVAL, "unknown dtype '%.64s': expected one of %s", s, valid);
}

// --- conversions -----------------------------------------------------------------

float ss_bf16_to_f32(uint16_t h) { return ss_bf16_to_f32_inline(h); }
uint16_t ss_f32_to_bf16(float f) { return ss_f32_to_bf16_inline(f); }
float ss_f16_to_f32(uint16_t h) { return ss_f16_to_f32_inline(h); }
uint16_t ss_f32_to_f16(float f) { return ss_f32_to_f16_inline(f); }
float ss_e4m3_to_f32(uint8_t b) { return ss_e4m3_to_f32_inline(b); }
uint8_t ss_f32_to_e4m3(float f) { return ss_f32_to_e4m3_inline(f); }
float ss_e5m2_to_f32(uint8_t b) { return ss_e5m2_to_f32_inline(b); }
uint8_t ss_f32_to_e5m2(float f) { return ss_f32_to_e5m2_inline(f); }

// --- loading one element ------------------------------------------------------------

/* memcpy because safetensors data offsets need not be aligned to the element. */
#define DEFINE_LOAD(type)                                 \
    static inline type load_##type(const unsigned char *p) { \
        type v;                                            \
        memcpy(&v, p, sizeof v);                           \
        return v;                                          \
    }
DEFINE_LOAD(uint8_t)
DEFINE_LOAD(int8_t)
DEFINE_LOAD(uint16_t)
DEFINE_LOAD(int16_t)
DEFINE_LOAD(int32_t)
DEFINE_LOAD(int64_t)
DEFINE_LOAD(float)
DEFINE_LOAD(double)

double ss_dtype_load(ss_dtype t, const void *data, size_t i) {
    const unsigned char *p = data;
    switch (t) {
    case SS_DTYPE_BF16: return ss_bf16_to_f32_inline(load_uint16_t(p + 2 * i));
    case SS_DTYPE_F16: return ss_f16_to_f32_inline(load_uint16_t(p + 2 * i));
    case SS_DTYPE_F32: return load_float(p + 4 * i);
    case SS_DTYPE_F64: return load_double(p + 8 * i);
    case SS_DTYPE_I8: return load_int8_t(p + i);
    case SS_DTYPE_U8: return load_uint8_t(p + i);
    case SS_DTYPE_I16: return load_int16_t(p + 2 * i);
    case SS_DTYPE_I32: return load_int32_t(p + 4 * i);
    case SS_DTYPE_I64: return (double)load_int64_t(p + 8 * i);
    case SS_DTYPE_BOOL: return p[i] != 0;
    case SS_DTYPE_F8_E4M3: return ss_e4m3_to_f32_inline(p[i]);
    case SS_DTYPE_F8_E5M2: return ss_e5m2_to_f32_inline(p[i]);
    default: return NAN;
    }
}

// --- arrays to BF16 -------------------------------------------------------------------

int ss_dtype_is_dense_float(ss_dtype t) {
    return t == SS_DTYPE_BF16 || t == SS_DTYPE_F16 || t == SS_DTYPE_F32;
}

int ss_dtype_to_bf16(ss_dtype t, const void *src, size_t n, uint16_t *dst) {
    const unsigned char *p = src;
    switch (t) {
    case SS_DTYPE_BF16: memcpy(dst, src, n * 2); return 1;
    case SS_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = ss_f32_to_bf16_inline(ss_f16_to_f32_inline(load_uint16_t(p + 2 * i)));
        return 1;
    case SS_DTYPE_F32:
        for (size_t i = 0; i < n; i++)
            dst[i] = ss_f32_to_bf16_inline(load_float(p + 4 * i));
        return 1;
    default: return 0;
    }
}
