/* slidesparse/sparse.h — Z:L patterns, pruning, the sliding-window
 * decomposition, activation lifting and 2:4 checks (SPEC §1-3). CPU, exact.
 *
 * Notation: a weight row has K inputs. Pattern 2_L (L = 2N) pads K to
 * Kp = ceil(K/L)*L; each group of L inputs becomes G = 4(N-1) slid columns
 * (N-1 windows of width 4, stride 2); K'raw = (Kp/L)*G, K' = ceil32(K'raw),
 * columns >= K'raw are zero.
 *
 * 2_inf ("dense weights through the slid path", benchmarks only) is one group
 * spanning the whole row: L_eff = ceil2(K) + 2, so no weight is pruned (the two
 * padding zeros are the group's zeros) and K'raw = 2*ceil2(K).
 */
#ifndef SLIDESPARSE_SPARSE_H
#define SLIDESPARSE_SPARSE_H

#include "slidesparse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int z; /* zeros per group; always 2 in this project (0 = dense, no pattern) */
    int l; /* group length, even >= 4; 0 means 2_inf */
} ss_pattern;

#define SS_PATTERN_DENSE ((ss_pattern){0, 0})
#define SS_PATTERN_INF   ((ss_pattern){2, 0})

/* Accepts "2_8", "6:8" ((L-2):L form), "2_inf", "inf". Rejects odd L, L < 4,
 * Z != 2, junk. */
ss_status ss_pattern_parse(const char *s, ss_pattern *out);
/* Writes "2_8" / "2_inf" / "dense"; returns buf. */
const char *ss_pattern_format(ss_pattern p, char *buf, size_t n);
int ss_pattern_is_dense(ss_pattern p);
int ss_pattern_is_inf(ss_pattern p);
/* Effective group length for a row of k inputs (2_inf: ceil2(k) + 2). */
int64_t ss_pattern_group_len(ss_pattern p, int64_t k);
/* Expansion e = G/L (2_inf: 2.0); dense: 1. */
double ss_pattern_expansion(ss_pattern p);
/* Ideal speedup over dense, N/(N-1) = 2/e. */
double ss_pattern_ideal_speedup(ss_pattern p);

int64_t ss_ceil32(int64_t x);
/* Kp = ceil(K/L)*L. */
int64_t ss_padded_k(ss_pattern p, int64_t k);
/* K'raw = (Kp/L)*G, before rounding up to 32. */
int64_t ss_slid_k_raw(ss_pattern p, int64_t k);
/* K' = ceil32(K'raw). Dense pattern: ceil32(K). */
int64_t ss_slid_k(ss_pattern p, int64_t k);

/* Lifting index map: for slid column j, the source input index, or -1 when the
 * column is zero (j >= K'raw or source >= K). */
int64_t ss_lift_src(ss_pattern p, int64_t k, int64_t j);
/* Fills map[0..K'-1] with ss_lift_src (int32: K' < 2^31 is checked). */
ss_status ss_lift_map(ss_pattern p, int64_t k, int32_t *map);

/* Is element i of a row zero? (-0.0 counts as zero for float types.) */
int ss_elem_is_zero(ss_dtype t, const void *row, int64_t i);

/* Prunes rows in place to pattern p: per group of L (K padded with zeros),
 * zero the Z entries of smallest |w|; existing zeros count first; ties are
 * broken by the smaller |ref| (when ref is non-NULL, same shape, BF16/F32/...
 * of dtype ref_dtype), then by the lower index. Float -0.0 becomes +0.0.
 * w: (n, k) of dtype t (I8, F8_E4M3, F8_E5M2, BF16, F16, F32). */
ss_status ss_prune(ss_dtype t, void *w, int64_t n, int64_t k, ss_pattern p,
                   ss_dtype ref_dtype, const void *ref);

/* Does every row satisfy pattern p (at least Z zeros per group of L)? On
 * failure, bad_row and bad_group (may be NULL) say where. */
int ss_check_pattern(ss_dtype t, const void *w, int64_t n, int64_t k, ss_pattern p,
                     int64_t *bad_row, int64_t *bad_group);

/* Slides rows: w (n, k) -> out (n, K') per SPEC §3. out is fully written
 * (zeros included). Fails with SS_EINVAL naming row and group when a group has
 * more nonzeros than the windows can hold (i.e. w is not pruned to p). */
ss_status ss_slide(ss_dtype t, const void *w, int64_t n, int64_t k, ss_pattern p,
                   void *out);

/* Inverse: slid (n, K') -> dense (n, k). Fails when a nonzero sits in a zero
 * column of the lift map or two nonzeros map onto one input. */
ss_status ss_unslide(ss_dtype t, const void *slid, int64_t n, int64_t k, ss_pattern p,
                     void *out);

/* 2:4 validity of rows of length kp (multiple of 4): at most 2 nonzeros in
 * every aligned group of 4. */
int ss_check_24(ss_dtype t, const void *w, int64_t n, int64_t kp,
                int64_t *bad_row, int64_t *bad_col);

/* Smallest L in {4, 6, ..., 16} such that every row satisfies 2_L; 0 when none
 * (dense). For `inspect`. */
int ss_detect_pattern_l(ss_dtype t, const void *w, int64_t n, int64_t k);

#ifdef __cplusplus
}
#endif
#endif
