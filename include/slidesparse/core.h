/* slidesparse/core.h — status codes, error text, dtypes, tensor views.
 *
 * Every library function returns ss_status; on failure ss_last_error() holds one
 * line naming the file/tensor, what was expected and what was found. The library
 * never prints and never exits.
 */
#ifndef SLIDESPARSE_CORE_H
#define SLIDESPARSE_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SS_VERSION_STRING "0.1.0"

// --- status ------------------------------------------------------------------

typedef enum {
    SS_OK = 0,
    SS_EINVAL,        /* bad argument or value (pattern string, shape, NaN weight) */
    SS_EIO,           /* open/read/write/rename failed (errno text in the message) */
    SS_EFORMAT,       /* malformed file: safetensors, config.json, tuning table */
    SS_ENOMEM,        /* host or device allocation failed */
    SS_EUNSUPPORTED,  /* valid request this build/device cannot do */
    SS_ECUDA,         /* CUDA / cuBLASLt / cuSPARSELt call failed */
    SS_ENOSPC,        /* no space left on device while writing output */
    SS_EEXIST,        /* output exists and --force was not given */
    SS_STATUS_COUNT
} ss_status;

/* "SS_EINVAL" etc. */
const char *ss_status_name(ss_status s);

/* The last error message of this thread ("" when none). Valid until the next
 * failing call on the same thread. */
const char *ss_last_error(void);

/* Clears this thread's error text. */
void ss_clear_error(void);

// --- dtypes ------------------------------------------------------------------

typedef enum {
    SS_DTYPE_BF16 = 0,
    SS_DTYPE_F16,
    SS_DTYPE_F32,
    SS_DTYPE_F64,
    SS_DTYPE_I8,
    SS_DTYPE_U8,
    SS_DTYPE_I16,
    SS_DTYPE_I32,
    SS_DTYPE_I64,
    SS_DTYPE_BOOL,
    SS_DTYPE_F8_E4M3,
    SS_DTYPE_F8_E5M2,
    SS_DTYPE_COUNT
} ss_dtype;

/* Bytes per element (1 for BOOL and the FP8 types; 0 for an invalid value). */
size_t ss_dtype_size(ss_dtype t);
/* Safetensors spelling: "BF16", "F8_E4M3", ... ("UNKNOWN" for an invalid value). */
const char *ss_dtype_name(ss_dtype t);
/* Parses the safetensors spelling (case-sensitive); also accepts the CLI
 * aliases "int8" (I8), "fp8" (F8_E4M3), "bf16", "fp16", "fp32". On failure
 * (SS_EINVAL) the message names the string and lists the valid spellings, and
 * *out is untouched. */
ss_status ss_dtype_parse(const char *s, ss_dtype *out);

/* Exact conversions. Rounding is to nearest, ties to even, everywhere; the
 * sign is always kept (-0 -> -0, a negative value rounding to zero gives -0).
 * Decoding (x -> f32) is exact for every pattern. Integer bit manipulation
 * only: results do not depend on the FPU rounding mode or FTZ/DAZ.
 * Inline versions for hot loops: core/dtype_inline.h.
 *
 * BF16: f32->bf16 keeps NaN a quiet NaN (sign and top payload bits kept, quiet
 *   bit 0x0040 set), Inf stays Inf, overflow rounds to Inf as IEEE does
 *   (from max + ulp/2 on, the tie included).
 * F16: IEEE binary16, subnormals kept, overflow -> Inf (from 65520 on), NaN ->
 *   quiet NaN (sign and top payload bits kept, quiet bit 0x0200 set, as F16C).
 * F8_E4M3 (OCP "e4m3fn"): bias 7, no Inf, one NaN pattern per sign (S.1111.111);
 *   exponent field 15 is finite (256..448); max finite 448. f32->e4m3
 *   SATURATES: |x| > 448 (and +-Inf) -> +-448 (0x7E/0xFE), never the NaN code;
 *   NaN -> 0x7F (or 0xFF with the sign). Subnormals (exp field 0, m * 2^-9)
 *   are kept.
 * F8_E5M2: bias 15, IEEE-like with Inf (S.11111.00) and NaN, max finite 57344;
 *   f32->e5m2 is NOT saturating: overflow (from 61440 on) -> Inf as in IEEE;
 *   NaN -> quiet NaN 0x7E|sign. Rounded from f32 directly (never through F16,
 *   which would round twice).
 */
float    ss_bf16_to_f32(uint16_t h);
uint16_t ss_f32_to_bf16(float f);
float    ss_f16_to_f32(uint16_t h);
uint16_t ss_f32_to_f16(float f);
float    ss_e4m3_to_f32(uint8_t b);
uint8_t  ss_f32_to_e4m3(float f);
float    ss_e5m2_to_f32(uint8_t b);
uint8_t  ss_f32_to_e5m2(float f);

/* Reads element i of a buffer of dtype t as double (BOOL -> 0/1; I64 beyond
 * 2^53 rounds; an invalid dtype gives NaN). The buffer need not be aligned. */
double ss_dtype_load(ss_dtype t, const void *data, size_t i);

/* Is t a float dtype that checkpoints may hold unquantized weights in (BF16,
 * F16, F32)? */
int ss_dtype_is_dense_float(ss_dtype t);

/* Converts n elements of src (dtype BF16, F16 or F32; need not be aligned)
 * to BF16 in dst: BF16 is copied, F16 and F32 go through their exact f32
 * value and ss_f32_to_bf16 (nearest, ties to even). Returns 0 (dst untouched)
 * when t is not one of those dtypes. */
int ss_dtype_to_bf16(ss_dtype t, const void *src, size_t n, uint16_t *dst);

// --- tensor views -------------------------------------------------------------

#define SS_MAX_DIMS 8

/* A non-owning view of a row-major tensor on the host or on a device. */
typedef struct {
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    void *data;
    int on_device; /* 0: host memory, 1: CUDA device memory */
} ss_tensor;

/* Product of the shape (1 for ndim 0). */
int64_t ss_tensor_numel(const ss_tensor *t);
size_t ss_tensor_nbytes(const ss_tensor *t);
/* A 2-D host view. */
ss_tensor ss_tensor_2d(ss_dtype t, int64_t rows, int64_t cols, void *data);

#ifdef __cplusplus
}
#endif
#endif
