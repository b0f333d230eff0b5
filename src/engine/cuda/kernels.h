/* Internal (CUDA builds): the engine's device kernels behind C launchers
 * (ops.cu, attention.cu). Same arithmetic and rounding points as the CPU ops
 * in engine/ops.h; every launcher runs on `stream`, never synchronizes, and
 * returns cudaSuccess or the launch error.
 *
 * BF16 buffers are uint16 bits. Row lengths that are multiples of 8 take the
 * 16-byte vector path (buffers come from cudaMalloc, so row starts are then
 * 16-byte aligned); other lengths take a scalar path.
 *
 * pdl != 0 (the launchers that take it; SS_ATTN_PDL for attention) launches
 * the kernel as a programmatic dependent launch (linear/kernels/pdl.cuh;
 * only where ss_kernel_pdl_on said yes): it may start while the previous
 * kernel drains and waits for it before touching what that kernel wrote.
 * What it reads before the wait is only the batch metadata (tok, rows, ids,
 * tables, tiles: written by a copy, never by a kernel) and constants.
 * ss_residual_add_cuda and ss_glu_cuda (not in the engine's forward: the
 * dequant stage fuses them) launch plainly.
 */
#ifndef SS_ENGINE_CUDA_KERNELS_H
#define SS_ENGINE_CUDA_KERNELS_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/ops.h" /* C declarations: keep C linkage from .cu files */

/* One attention work tile: query rows row0..row0+nq-1 (consecutive new tokens
 * of sequence `seq`, consecutive increasing positions) times query heads
 * head0..head0+nheads-1, all of one kv head. nq * nheads <= SS_ATTN_ITEMS.
 * 256 items = 64 rows x 4 heads for BitNet-2B's GQA group of 4: one 64-row
 * tensor-core query tile per head (attention.cu). */
typedef struct {
    int32_t seq, row0, nq, head0, nheads;
} ss_attn_tile;

#define SS_ATTN_ITEMS 256

/* One layer's slice of the paged KV pool (engine.h): k, v (n_blocks,
 * SS_KV_BLOCK, nkv, hd) BF16, or E4M3 when fp8 != 0 with the row scales ks,
 * vs (n_blocks, SS_KV_BLOCK, nkv) F32 (NULL for BF16). The RoPE kernel writes
 * it (quantizing FP8 rows as ss_kv_quant_row), attention reads FP8 rows as
 * bf16(f32(q) * scale) (ss_kv_dequant_row) and then computes as on BF16. */
typedef struct {
    void *k, *v;
    float *ks, *vs;
    int fp8;
} ss_kv_layer;

/* y (t, n) = rmsnorm of x rows (rows[r] when rows != NULL, else r), w (n). */
cudaError_t ss_rmsnorm_cuda(const uint16_t *x, const int32_t *rows, const uint16_t *w, int64_t t,
                            int64_t n, float eps, uint16_t *y, int pdl, cudaStream_t stream);
/* x (t, n) = bf16(x + d). */
cudaError_t ss_residual_add_cuda(uint16_t *x, const uint16_t *d, int64_t t, int64_t n,
                                 cudaStream_t stream);
/* y (t, i) = act(gate) * up from gu (t, 2i) = [gate | up]. */
cudaError_t ss_glu_cuda(const uint16_t *gu, int64_t t, int64_t i, int relu2, uint16_t *y,
                        cudaStream_t stream);
/* RoPE on the q and k heads of qkv (t, (nh + 2 nkv) hd) in place, and the
 * rotated k and the v of every token written to its cache slot of kv (this
 * layer's pool; FP8: each (token, kv head) row quantized with its scale);
 *   tables: (n_seqs, max_blocks) block ids per sequence. */
cudaError_t ss_rope_kv_write_cuda(uint16_t *qkv, const ss_tok_info *tok, int64_t t, int nh,
                                  int nkv, int hd, const float *inv_freq, const ss_kv_layer *kv,
                                  const int32_t *tables, int max_blocks, int pdl, cudaStream_t stream);
/* out (t, nh*hd): causal GQA attention of every query row over positions
 * 0..pos of its sequence, read from the paged cache (flash style: key tiles
 * in shared memory, online softmax in float). One block per tile. */
cudaError_t ss_attention_cuda(const uint16_t *qkv, const ss_tok_info *tok,
                              const ss_attn_tile *tiles, int64_t n_tiles, const int32_t *tables,
                              int max_blocks, const uint16_t *k_layer, const uint16_t *v_layer,
                              int nh, int nkv, int hd, uint16_t *out, cudaStream_t stream);
/* The same with a kernel choice, for dev/attention.cu's ladder:
 *   SS_ATTN_AUTO   what ss_attention_cuda runs: head_dim 128 -> tensor-core
 *                  prefill (2 heads per block) for tiles of >= 2 rows and the
 *                  default decode kernel for 1-row tiles (v3; SS_ATTN_DECODE=1,
 *                  2 or 3 in the environment picks v1, v2, v3, read once per
 *                  process); else SIMT
 *   SS_ATTN_MMA_H1 as AUTO with one head per tensor-core block and decode v1
 *   SS_ATTN_SIMT   the SIMT kernel for every tile (any head_dim)
 *   SS_ATTN_DECODE2 as AUTO with the v2 decode kernel (a chunk's value rows
 *                  loaded up front, 16-byte loads; the engine's SS_ATTN_DECODE=2)
 *   SS_ATTN_DECODE1 as AUTO with the v1 split-key decode kernel (8 warps per
 *                  (sequence, kv head))
 *   SS_ATTN_DECODE3 as AUTO with the v3 decode kernel (keys split over a
 *                  cluster of blocks, cp.async K/V tiles, tensor-core heads;
 *                  cc >= 9.0, v1 below)
 * OR-ed flag:
 *   SS_ATTN_PURE_DECODE every tile has one row (the batch has no prefill
 *                  token): the tensor-core prefill grid, all of whose blocks
 *                  would return at once, is not launched.
 *   SS_ATTN_DECODE3_SPLITS(n) (dev/attention.cu's sweep) v3 with clusters of
 *                  n blocks (1, 2, 4 or 8) instead of the size chosen from the
 *                  tile count.
 *   SS_ATTN_PDL    every kernel launched as a programmatic dependent launch
 *                  (the launch of a prefill batch's second kernel included). */
#define SS_ATTN_DECODE3_SPLITS(n) ((n) << 12)
enum {
    SS_ATTN_AUTO = 0,
    SS_ATTN_MMA_H1 = 1,
    SS_ATTN_SIMT = 2,
    SS_ATTN_DECODE2 = 3,
    SS_ATTN_DECODE1 = 4,
    SS_ATTN_DECODE3 = 5,
    SS_ATTN_PURE_DECODE = 0x100,
    SS_ATTN_PDL = 0x200
};
cudaError_t ss_attention_cuda_variant(const uint16_t *qkv, const ss_tok_info *tok,
                                      const ss_attn_tile *tiles, int64_t n_tiles,
                                      const int32_t *tables, int max_blocks,
                                      const uint16_t *k_layer, const uint16_t *v_layer, int nh,
                                      int nkv, int hd, uint16_t *out, int variant,
                                      cudaStream_t stream);
/* ss_attention_cuda_variant over a BF16 or FP8 layer slice (what the engine
 * calls). With FP8 every kernel stages dequantized BF16 rows where it staged
 * the BF16 rows (bit-identical results to the same kernel on a BF16 pool
 * holding the dequantized rows); the tensor-core kernels (prefill, decode v3)
 * copy the raw e4m3 tiles by cp.async and dequantize them in shared memory. */
cudaError_t ss_attention_cuda_kv(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                                 int64_t n_tiles, const int32_t *tables, int max_blocks,
                                 const ss_kv_layer *kv, int nh, int nkv, int hd, uint16_t *out,
                                 int variant, cudaStream_t stream);
/* x (t, h) = embed rows ids[r]. */
cudaError_t ss_embed_cuda(const uint16_t *embed, const int32_t *ids, int64_t t, int64_t h,
                          uint16_t *x, int pdl, cudaStream_t stream);
/* next[r] = argmax of logits row r (n_rows, vocab): lowest index on ties, NaN
 * never wins (index 0 when every value is NaN), as ss_sample_greedy. */
cudaError_t ss_argmax_cuda(const float *logits, int64_t n_rows, int64_t vocab, int32_t *next,
                           int pdl, cudaStream_t stream);

/* Largest head_dim the attention kernel handles. */
#define SS_ATTN_MAX_HD 256

#ifdef __cplusplus
}
#endif
#endif
