/* Internal (sm90sp.cu): the weight-streaming decode GEMM of the sm90sp /
 * sm90dense backends, for batches of at most SS_STREAM_MAX_M tokens.
 *
 *   y (m, ldy) BF16 = bf16(((float)(W q^T) * sa[m]) * sb[n] + bias[n])
 *
 * the same fused dequant, rounded op by op, as the CUTLASS kernels of those
 * backends (sm90sp.cu), so INT8 is bit-exact against the CPU backend. W is
 * in the layout of stream_layout.h (dense, or 2:4 compressed slid weights);
 * q (m_pad, kq) is what the linear's quant stage writes (rows >= m zero).
 *
 * Why: at decode sizes a projection is a weight stream (~128 operations per
 * weight byte at 64 tokens): the time is the bytes over HBM bandwidth plus
 * the fixed cost of one launch. Every warpgroup streams 64 weight rows of a
 * K range through a ring of shared-memory stages filled by the bulk copy
 * engine (several chunks in flight) into wgmma's register A operand, the few
 * token rows wait in shared memory, a thread-block cluster along K adds its
 * partial tiles through distributed shared memory (no workspace, no memset, a
 * fixed summation order), and the epilogue writes BF16 (+ GLU / residual).
 * With 2:4 weights the instruction is wgmma.sp and the stream is 0.625 bytes
 * per K' column instead of 1 per K column.
 *
 * A second, register form (dense weights, at most 64 tokens) reads the same
 * layout with mma.sync: the weights go from global memory straight into
 * registers (several steps in flight per warp, no barrier in the main
 * loop), the tokens are the instruction's A operand from shared memory, and
 * the cluster's partials meet by distributed-shared-memory loads
 * (sm90stream.cu says why and how).
 */
#ifndef SS_LINEAR_SM90STREAM_H
#define SS_LINEAR_SM90STREAM_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#define SS_STREAM_MAX_M 128 /* token rows per launch (wgmma N up to 128) */
#define SS_STREAM_SYNC_MAX_M 64 /* token rows of the register (mma.sync) form */
/* The tuner's candidates: the wgmma form's warpgroups per block x waves
 * (0 .. SS_STREAM_WGMMA_CONFIGS-1), then the register form's block shapes
 * with the weights in flight in registers (.. SS_STREAM_REG_CONFIGS-1), then
 * with them in a shared-memory ring (dense weights, m_pad <=
 * SS_STREAM_SYNC_MAX_M; ss_stream_config_count says which fit). */
#define SS_STREAM_WGMMA_CONFIGS 6
#define SS_STREAM_REG_CONFIGS 9
#define SS_STREAM_CONFIGS 12

/* What the epilogue does with the BF16 projection output y (the engine's next
 * elementwise op, with the rounding points of kernels/dequant.cu, so the
 * result equals the GEMM followed by that kernel bit for bit):
 *   PLAIN     out (m, ldy) = y
 *   GLU_*     out (m, ldy) = bf16(act(y[:, c]) * y[:, n/2 + c]), c < n/2:
 *             act = relu(g)^2 or SiLU (needs ss_stream_glu_fits(n))
 *   RESIDUAL  out (m, ldy) = bf16(out + y), the residual stream in place */
typedef enum {
    SS_STREAM_OP_PLAIN = 0,
    SS_STREAM_OP_GLU_RELU2,
    SS_STREAM_OP_GLU_SILU,
    SS_STREAM_OP_RESIDUAL,
} ss_stream_op;

typedef struct {
    const void *w;          /* stream layout (stream_layout.h) */
    const void *q;          // (m_pad, kq) I8 / F8_E4M3
    const float *sa;        // (m_pad) token scales
    const float *sb;        // (>= n) weight scales, per channel
    const uint16_t *bias;   // (>= n) BF16, -0.0 where there is none
    uint16_t *y;            // (m, ldy) BF16: the output (op)
    int m, m_pad, n, kq, ldy;
    int fp8, sparse;
    int config;             /* 0 .. ss_stream_config_count() - 1 */
    int sms;                /* multiprocessors of the device */
    int pdl;                /* launch as a programmatic dependent launch */
    int op;                 /* ss_stream_op */
    /* NULL in the library. A dev harness passes SS_STREAM_TRACE_SLOTS words
     * per block (block = y * grid.x + x; ss_stream_grid says the grid) and
     * gets where the block's time went (SS_STREAM_TRACE_*; the wgmma form
     * only). */
    unsigned long long *trace;
} ss_stream_args;

/* The phase trace (dev/stream_phases.cu): globaltimer ns at the block's start
 * and end, then SM clock cycles spent, per block, in: the prologue (scales,
 * PDL wait, first token copies issued), waiting for token rows, waiting for
 * weight stages, reading fragments + wgmma, the per-chunk barriers and
 * refills, the split-K exchange (up to the cluster barrier), the epilogue. */
enum {
    SS_STREAM_TRACE_START_NS = 0,
    SS_STREAM_TRACE_END_NS,
    SS_STREAM_TRACE_PROLOGUE,
    SS_STREAM_TRACE_TOKEN_WAIT,
    SS_STREAM_TRACE_WEIGHT_WAIT,
    SS_STREAM_TRACE_MMA,
    SS_STREAM_TRACE_REFILL,
    SS_STREAM_TRACE_EXCHANGE,
    SS_STREAM_TRACE_EPILOGUE,
    SS_STREAM_TRACE_CHUNKS,
    SS_STREAM_TRACE_SLOTS
};
/* The launch grid of a (blocks x, K splits y), as ss_stream_gemm picks it. */
cudaError_t ss_stream_grid(const ss_stream_args *a, int *grid_x, int *grid_y);

/* Whether the GLU epilogue can pair gate and up rows of an n-row projection:
 * n / 2 a multiple of the 64-row tile (a block holds gate tile i and up tile i). */
int ss_stream_glu_fits(int n);

/* Candidates 0 .. count-1 apply to (dense or 2:4, m_pad tokens, kq): the
 * wgmma form's, and the register form's where it applies; 0 for m_pad
 * outside 1 .. SS_STREAM_MAX_M. */
int ss_stream_config_count(int sparse, int m_pad, int64_t kq);

/* "wg1 w2" etc.: the candidate's name for the tuning table. */
const char *ss_stream_config_name(int config);
/* Raises the dynamic shared-memory limit of every instantiation on the
 * current device (once per linear at creation: not inside a capture). */
cudaError_t ss_stream_prepare(void);
cudaError_t ss_stream_gemm(const ss_stream_args *a, cudaStream_t s);

#endif
