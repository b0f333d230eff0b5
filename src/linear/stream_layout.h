/* Internal: the weight layout of the weight-streaming decode GEMM
 * (sm90stream.cu). CPU, exact; CI round-trips it (test_stream_layout).
 *
 * Why a layout of its own: at decode sizes (m <= 128 tokens) a GEMM moves each
 * weight byte once and does little arithmetic with it, so its speed is the
 * rate at which the weights leave HBM. The kernel reads them straight into
 * the registers of wgmma's A operand (the "RS" form: no shared-memory round
 * trip, no TMA descriptor, no bank conflicts), which works best when every
 * thread's fragment of one instruction is one 16-byte load and a warpgroup's
 * 128 loads of one instruction are one contiguous 2 KB block. So the weights
 * are stored in exactly the order the instruction consumes them.
 *
 * Geometry: 64 weight rows form a tile (one warpgroup's wgmma M); a K step is
 * the K one instruction covers: 32 bytes dense (m64nNk32), 64 bytes of K' for
 * 2:4 (m64nNk64.sp, 32 compressed bytes). tiles = ceil(n / 64), steps =
 * ceil(kq / step). Rows >= n and columns >= kq are zero. A record (tile T,
 * step s) sits at byte (T * steps + s) * record bytes, so one warpgroup
 * streams its tile over a K range as one contiguous run.
 *
 * Thread t of the warpgroup (warp w = t / 32, lane l = t % 32) holds the
 * mma.sync m16n8k32 A fragment of its warp's 16 rows (PTX ISA, wgmma register
 * fragment of A = four m16n8k32 fragments stacked):
 *   r0 = 64T + 16w + l/4, r1 = r0 + 8, c = 4 (l % 4)
 *   16 bytes at record + 16 t: A[r0][c..c+3] A[r1][c..c+3] A[r0][c+16..c+19] A[r1][c+16..c+19]
 * where A is the step's 64 x 32-byte slice: dense W[.][32 s + j]; 2:4 the
 * compressed values C[.][j] of W'[.][64 s .. 64 s + 63] (group g = j / 2,
 * C[r][2g], C[r][2g+1] = the kept pair of group g, slidesparse/compress24.h).
 * 2:4 records add 512 bytes of metadata after the 2048 of values: thread t's
 * 32-bit word at record + 2048 + 4 t covers row 64T + 16w + l/4 + 8 (l % 2),
 * groups 8 ((l / 2) % 2) .. +7 of the step, group j of them in bits
 * [4j+3 : 4j] (nibble = idx0 | idx1 << 2, compress24.h's nibble) — the
 * metadata layout of wgmma.mma_async.sp for 8-bit types with sparsity
 * selector 0, checked on the H100 by dev/wgmma_peak.cu's one-instruction
 * validation against the CPU.
 *
 * Bytes per weight: dense 1; 2:4 (2048 + 512) / (64 * 64) = 0.625 per K'
 * column (values 0.5 + metadata 0.125).
 */
#ifndef SS_LINEAR_STREAM_LAYOUT_H
#define SS_LINEAR_STREAM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "slidesparse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SS_STREAM_TILE_ROWS 64
#define SS_STREAM_DENSE_STEP 32    /* K bytes per dense step */
#define SS_STREAM_SPARSE_STEP 64   /* K' bytes per 2:4 step */
#define SS_STREAM_DENSE_RECORD 2048
#define SS_STREAM_SPARSE_RECORD 2560
#define SS_STREAM_META_OFFSET 2048 /* metadata words after the values */

/* Steps of one tile (ceil(kq / step)) and bytes of the whole layout; 0 for
 * n <= 0 or kq <= 0. */
int64_t ss_stream_steps(int sparse, int64_t kq);
int64_t ss_stream_tiles(int64_t n);
size_t ss_stream_bytes(int sparse, int64_t n, int64_t kq);

/* Dense: w (n, k) 1-byte elements (I8 or F8_E4M3), row stride k, packed as
 * columns 0..kq-1 (k <= kq; columns >= k are zero) into out
 * (ss_stream_bytes(0, n, kq) bytes). */
ss_status ss_stream_pack_dense(const void *w, int64_t n, int64_t k, int64_t kq, void *out);

/* 2:4: w (n, kq) slid, 2:4-valid (ss_check_24 semantics for dtype t, I8 or
 * F8_E4M3), packed into out (ss_stream_bytes(1, n, kq) bytes). SS_EINVAL
 * naming `name`, the row and the column when a group of 4 holds more than 2
 * nonzeros, or for a bad dtype / shape. */
ss_status ss_stream_pack_sparse(ss_dtype t, const void *w, int64_t n, int64_t kq, void *out,
                                const char *name);

/* Inverse of either pack (tests, tools): writes out (n, kq) from the layout;
 * 2:4 positions not kept come back as +0. SS_EINVAL for a bad shape or an
 * illegal metadata nibble. */
ss_status ss_stream_unpack(int sparse, const void *packed, int64_t n, int64_t kq, void *out);

#ifdef __cplusplus
}
#endif
#endif
