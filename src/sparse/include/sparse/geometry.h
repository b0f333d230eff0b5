/* Internal: the sizes of one slid row and the per-dtype element views shared by
 * pattern.c, prune.c, slide.c and the activation quantizer.
 *
 * Every function that walks a slid row does so group by group, window by
 * window, lane by lane (no division per element):
 *     slid column j = g*G + 4*w + lane   <-   input g*L + 2*w + lane
 */
#ifndef SS_SPARSE_GEOMETRY_H
#define SS_SPARSE_GEOMETRY_H

#include "slidesparse/sparse.h"

/* Longest group accepted: far beyond any useful pattern (2_16 is the largest
 * benchmarked); prune.c packs an index in a group into 13 bits. */
#define SS_PATTERN_MAX_L 4096

typedef struct {
    int64_t k;      /* inputs per row */
    int64_t l;      /* group length (2_inf: ceil2(k) + 2) */
    int64_t g;      /* slid columns per group, 4(N-1) = 2l - 4 */
    int64_t wins;   /* windows per group, N - 1 */
    int64_t groups; /* kp / l */
    int64_t kp;     /* padded inputs */
    int64_t kraw;   /* groups * g */
    int64_t kslid;  /* ceil32(kraw) */
} ss_slide_geom;

/* Validates p (not dense) and k >= 0 and fills g; SS_EINVAL otherwise. `what`
 * names the caller in the error text. */
ss_status ss_slide_geom_init(const char *what, ss_pattern p, int64_t k, ss_slide_geom *g);

/* Validates a pattern value: dense, 2_inf, or {2, even L >= 4}. */
ss_status ss_pattern_check(const char *what, ss_pattern p);

/* Element width and the mask of the bits that make an element nonzero
 * (float types: everything but the sign, so -0.0 is zero). Returns 0 for
 * dtypes the sparse code does not handle (F64, I64, BOOL). */
typedef struct {
    int size;         /* 1, 2 or 4 bytes */
    uint32_t nzmask;  /* element != 0  <=>  (bits & nzmask) != 0 */
} ss_elem_kind;

static inline int ss_elem_kind_of(ss_dtype t, ss_elem_kind *e) {
    switch (t) {
    case SS_DTYPE_I8:
    case SS_DTYPE_U8: *e = (ss_elem_kind){1, 0xFFu}; return 1;
    case SS_DTYPE_F8_E4M3:
    case SS_DTYPE_F8_E5M2: *e = (ss_elem_kind){1, 0x7Fu}; return 1;
    case SS_DTYPE_I16: *e = (ss_elem_kind){2, 0xFFFFu}; return 1;
    case SS_DTYPE_BF16:
    case SS_DTYPE_F16: *e = (ss_elem_kind){2, 0x7FFFu}; return 1;
    case SS_DTYPE_I32: *e = (ss_elem_kind){4, 0xFFFFFFFFu}; return 1;
    case SS_DTYPE_F32: *e = (ss_elem_kind){4, 0x7FFFFFFFu}; return 1;
    default: return 0;
    }
}

/* Rows below this many elements in total are processed on one thread: the
 * OpenMP fork costs more than the work. */
#define SS_PAR_MIN_ELEMS ((int64_t)1 << 16)

#endif
