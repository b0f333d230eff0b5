/* slidesparse/compress24.h — our own offline 2:4 compressor for the sparse
 * operand of Hopper's wgmma.mma_async.sp. CPU, exact.
 *
 * --- What the PTX ISA says (sources) ---------------------------------------
 * [W] PTX ISA §9.7.15.6 / §9.7.15.6.1 "Asynchronous Warpgroup Level
 *     Multiply-and-Accumulate Operation using wgmma.mma_async.sp" / "Sparse
 *     matrix storage" (docs.nvidia.com/cuda/parallel-thread-execution,
 *     #asynchronous-warpgroup-level-sparse-matrix-storage).
 * [M] PTX ISA §9.7.14.6.1 "Sparse matrix storage" for warp-level
 *     mma.sp{::ordered_metadata} (#warp-level-sparse-matrix-storage).
 * [C] CUTLASS include/cutlass/transform/kernel/sm90_sparse_gemm_compressor.hpp
 *     (SM90StructuredSparseCompressor: MetadataOneChunk2to4, its "corner
 *     case" for chunks with fewer than 2 nonzeros).
 *
 *  1. The sparse operand is A (M x K, K contiguous in a row): "an MxK matrix A
 *     is packed into MxK/2 elements ... the mapping of these K/2 elements to
 *     the K-wide row is provided explicitly as metadata" [W]. In this project
 *     A is the weight W (N, K'): rows = output features, K' = slid inputs.
 *  2. Granularity per type [W]: .f16/.bf16 (64xNx32 shapes), .e4m3/.e5m2 and
 *     .s8/.u8 (64xNx64 shapes) are all 2:4 over ELEMENTS: "each chunk of four
 *     adjacent elements in a row of matrix A have two zeroes and two non-zero
 *     elements ... indicated by two 2-bit indices in the metadata". So 8-bit
 *     types are NOT pair-wise: only .u4/.s4 (mma.sp, 4:8 "pair-wise
 *     structured", two-wide sub-chunks) and .tf32 (1:2, one 4-bit index,
 *     only 0b0100 / 0b1110 meaningful) differ [M][W]; neither is used here.
 *  3. One chunk's metadata is 4 bits: index of the first kept element in
 *     bits [1:0], of the second in bits [3:2]. Values 0b0000, 0b0101, 0b1010,
 *     0b1111 (two equal indices) are invalid, undefined behaviour [W][M]. For
 *     mma.sp::ordered_metadata (and the 8-bit kinds) only 0b0100, 0b1000,
 *     0b1001, 0b1100, 0b1101, 0b1110 are meaningful [M], i.e. the pairs
 *     (0,1) (0,2) (1,2) (0,3) (1,3) (2,3): idx0 < idx1, the values stored in
 *     the same order. We always emit one of these six (legal under both).
 *  4. A chunk with fewer than 2 nonzeros still needs a legal pair: zeros are
 *     then stored as values. [C] pads a single nonzero at i < 3 with index 3
 *     and one at 3 with index 0; for an all-zero chunk it leaves 0b0000, which
 *     [W] calls invalid, so we do not follow it there. Our rule: the kept set
 *     is the nonzero positions, filled up to two from {3, 0} (in that order,
 *     skipping taken ones): 1 nonzero at i<3 -> (i,3); at 3 -> (0,3);
 *     none -> (0,3) = 0b1100. Same as [C] wherever [C] is legal.
 *  5. Consecutive chunks: 4 bits each, chunk j of a row at bits [4j+3:4j] of
 *     the row's metadata read as a little-endian integer (so a 32-bit
 *     metadata register covers 8 chunks = 32 columns; [C] stores uint4
 *     chunks packed in that order; [M] figures "Tk: [m..n] in cell[x][y..z]").
 *  6. Sparsity selector [W]: .f16/.bf16/.tf32 — a thread pair of each group
 *     of four threads holds the metadata, selector 0 (T0,T1) or 1 (T2,T3);
 *     .e4m3/.e5m2/.s8/.u8 — all four threads contribute, selector must be 0.
 *     The selector is a kernel concern: the logical format below is the same
 *     for all types.
 *
 * --- The LOGICAL format produced here ---------------------------------------
 *   w      (n, kp) dense, kp % 4 == 0, every aligned group of 4 has <= 2
 *          nonzeros (ss_check_24 semantics: -0.0 counts as zero).
 *   values (n, kp/2) elements of the same dtype: for group j of row r, the
 *          elements at positions idx0 < idx1 of the group, stored at
 *          values[r][2j], values[r][2j+1]; their bits are copied unchanged
 *          (a kept filler zero keeps its sign).
 *   meta   (n, ss_meta24_row_bytes(kp)) bytes, row stride
 *          ceil(kp/8) bytes: group j at byte j/2, low nibble for even j, high
 *          nibble for odd j; nibble = idx0 | idx1 << 2. When kp/4 is odd the
 *          unused high nibble of a row's last byte is 0.
 * decompress(compress(W)) == W bit for bit, except that a -0.0 in a dropped
 * position comes back as +0.0.
 *
 * NOT done here: the reordering of values and metadata into the per-tile,
 * per-thread order that a wgmma warpgroup reads (CUTLASS's "reordered" E
 * layout, [C] fill_layoutE / TensorEAtom). That is a separate step that
 * belongs with the GPU kernel, where it can be tested against the hardware.
 */
#ifndef SLIDESPARSE_COMPRESS24_H
#define SLIDESPARSE_COMPRESS24_H

#include "slidesparse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Does ss_compress24 accept dtype t? I8, F8_E4M3, F8_E5M2, BF16, F16. */
int ss_compress24_supports(ss_dtype t);

/* Bytes of metadata per row of kp columns: ceil(kp/8). */
int64_t ss_meta24_row_bytes(int64_t kp);
/* Bytes of values / metadata for (n, kp); 0 when the shape or dtype is bad. */
size_t ss_compress24_values_bytes(ss_dtype t, int64_t n, int64_t kp);
size_t ss_compress24_meta_bytes(int64_t n, int64_t kp);

/* Compresses w (n, kp) into values (n, kp/2) and meta (n, ceil(kp/8)) in the
 * logical format above. SS_EINVAL for an unsupported dtype, a bad shape
 * (n < 0, kp < 0, kp % 4 != 0), NULL buffers, or a group with more than 2
 * nonzeros (the message names the first such row and group); on failure the
 * outputs are unspecified. */
ss_status ss_compress24(ss_dtype t, const void *w, int64_t n, int64_t kp, void *values,
                        uint8_t *meta);

/* Inverse: writes all of out (n, kp); positions not kept are +0. SS_EINVAL on
 * a bad dtype/shape or a metadata nibble that is not one of the six legal
 * pairs (the message names row and group). */
ss_status ss_decompress24(ss_dtype t, const void *values, const uint8_t *meta, int64_t n,
                          int64_t kp, void *out);

/* The two indices of a legal nibble (idx0 < idx1); 0 when the nibble is not
 * one of 0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110. */
int ss_meta24_decode(unsigned nibble, int *idx0, int *idx1);

#ifdef __cplusplus
}
#endif
#endif
