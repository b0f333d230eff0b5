/* Internal (sm90sp.cu, sm90dense.cu): the CUTLASS SM90 kernel family of the
 * sm90sp / sm90dense backends: INT8 (S32 accumulation) or FP8 e4m3 (F32
 * accumulation) GEMM, 2:4 sparse or dense A operand, with the dequant as one
 * EVT epilogue node, three tile/schedule variants per dtype, and run<Cfg>()
 * that launches one. The mapping onto CUTLASS and the epilogue's arithmetic
 * are described at the top of sm90sp.cu.
 *
 * FP8 takes CUTLASS's FP8FastAccum schedules: the wgmma accumulates in its F32
 * registers throughout. The default FP8 mainloops (promotion into a second F32
 * accumulator every 4 k-blocks) doubled the accumulator registers of these
 * 128x256 / 128x128 tiles and ran 3x slower than cuBLASLt on the H100 (dense
 * BitNet-2B M 4096: 1487 vs 472 µs; docs/results/h100.md); the error of
 * fast accumulation stays within the FP8 tolerance the tests use (1e-2
 * normalized, like cuBLASLt / cuSPARSELt).
 *
 * Decode: at M 64 a GEMM is a weight stream. With tiles of 128
 * weight rows, BitNet-2B's qkv (n 3840) has 30 output tiles for 132 SMs, so
 * the persistent schedulers leave most SMs idle while the weights stream
 * (sm90dense decode 18.1k tokens/s vs cuBLASLt's 22.2k). Skinny is a 128x64
 * (tokens) cooperative tile under CUTLASS's stream-K scheduler: the k-blocks
 * of all output tiles are dealt out over every SM (stream-K, or split-K with
 * a runtime split count), and the partial accumulators are reduced in the
 * workspace before the epilogue, in the accumulator type (S32 for INT8:
 * integer sums, exact in any order, so the fused dequant sees the same sum
 * and stays bit-exact). The stream-K scheduler needs its barrier workspace
 * zeroed before each launch (a memset node before the GEMM in a graph).
 *
 * Programmatic dependent launch: CUTLASS_ENABLE_GDC_FOR_SM90 compiles the
 * griddepcontrol instructions into the SM90 kernels (the producer warps wait
 * for the previous grid before their first global load; the consumers signal
 * launch_dependents at their last tile), and run() launches with PDL where the
 * caller says so (Launch::pdl: SS_PDL, and batches of <= SS_PDL_MAX_ROWS rows,
 * like the linear's other kernels), so inside the engine's decode graphs a
 * GEMM's launch and prologue (barrier init, TMA descriptor prefetch) overlap
 * the previous kernel's tail. Not at prefill sizes: there the early-resident
 * GEMM CTAs cost sm90dense prefill at M 16384 11% on the H100.
 *
 * Each instantiation costs ~25-60 s of nvcc on one core, so the twelve live in
 * two translation units that build in parallel: sm90sp.cu instantiates the
 * sparse six, sm90dense.cu the dense six (the extern templates below keep
 * sm90sp.cu from instantiating them again).
 */
#ifndef SS_LINEAR_SM90_GEMM_CUH
#define SS_LINEAR_SM90_GEMM_CUH

#include <cublasLt.h>
#include <cuda_runtime.h>
#ifdef SS_HAVE_CUSPARSELT
#include <cusparseLt.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

/* griddepcontrol in CUTLASS's SM90 kernels (cutlass/arch/grid_dependency_control.h
 * gates it on this macro and sm_90a); set before any CUTLASS header */
#ifndef CUTLASS_ENABLE_GDC_FOR_SM90
#define CUTLASS_ENABLE_GDC_FOR_SM90 1
#endif

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#include "cutlass/kernel_hardware_info.h"
#include "cutlass/transform/device/transform_universal_adapter.hpp"
#include "cutlass/transform/kernel/sparse_gemm_compressor.hpp"
#include "cutlass/util/packed_stride.hpp"

extern "C" {
#include "core/error.h"
#include "linear/cuda_state.h"
}

namespace ss_sm90sp {
/* CUTLASS 4.2's SM90 stream-K scheduler does not compile with GDC on: the
 * cooperative kernel then calls its const is_last_tile(), which binds the
 * member unit_iter_start_ to a non-const reference. This scheduler is that
 * one with is_last_tile() asking a copy of itself instead (same answer: the
 * original only needs the copy because the lookup writes unit_iter_start),
 * selected by its own tag (TileSchedulerSelector below). */
struct StreamKGdcScheduler {};
template <class TileShape, class ClusterShape>
struct StreamKGdc
    : cutlass::gemm::kernel::detail::PersistentTileSchedulerSm90StreamK<TileShape, ClusterShape> {
    using Base = cutlass::gemm::kernel::detail::PersistentTileSchedulerSm90StreamK<TileShape,
                                                                                   ClusterShape>;
    using Base::Base;
    CUTLASS_DEVICE bool is_last_tile(typename Base::WorkTileInfo w, uint32_t advance = 1) const {
        Base next = *this;
        if (next.continue_current_work(w))
            return false;
        next.advance_to_next_work(advance);
        return !next.get_current_work().is_valid();
    }
};
} // namespace ss_sm90sp

namespace cutlass::gemm::kernel::detail {
template <class TileShape, class ClusterShape, uint32_t Stages>
struct TileSchedulerSelector<ss_sm90sp::StreamKGdcScheduler, arch::Sm90, TileShape, ClusterShape,
                             Stages> {
    using Scheduler = ss_sm90sp::StreamKGdc<TileShape, ClusterShape>;
};
} // namespace cutlass::gemm::kernel::detail

namespace ss_sm90sp {
using namespace cute;

/* The dequant epilogue as one EVT compute node (an int32 acc converted to
 * float with round-to-nearest by Sm90Compute; an FP8 GEMM's acc is float). */
template <class T>
struct DequantFn {
    CUTLASS_HOST_DEVICE T operator()(T acc, T sa, T sb, T bias) const {
        return acc * sa * sb + bias; /* only instantiated for the Arguments probe */
    }
};
template <int N>
struct DequantFn<cutlass::Array<float, N>> {
    CUTLASS_DEVICE cutlass::Array<float, N>
    operator()(cutlass::Array<float, N> const &acc, cutlass::Array<float, N> const &sa,
               cutlass::Array<float, N> const &sb, cutlass::Array<float, N> const &bias) const {
        cutlass::Array<float, N> r;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; ++i)
            r[i] = __fadd_rn(__fmul_rn(__fmul_rn(acc[i], sa[i]), sb[i]), bias[i]);
        return r;
    }
};

using ProblemShape = Shape<int, int, int, int>;  /* (n_pad, m, K', 1) */
using LayoutTagA = cutlass::layout::RowMajor;    /* W' (n_pad, K'), K-major */
using LayoutTagB = cutlass::layout::ColumnMajor; /* q (m, K'), K-major */
using LayoutTagD = cutlass::layout::ColumnMajor; /* Y (m, n_pad) row-major */
using ElementD = cutlass::bfloat16_t;
using E4M3 = cutlass::float_e4m3_t;

/* The accumulator of an 8-bit operand type: S32 for int8, F32 for e4m3. */
template <class T>
using AccOf = std::conditional_t<std::is_same_v<T, int8_t>, int32_t, float>;

/* TileSched_: void = CUTLASS's persistent scheduler, or StreamKGdcScheduler
 * (CUTLASS's stream-K; cooperative kernels only). */
template <bool Sparse_, class Elem_, class Tile_, class Cluster_, class KSched_, class ESched_,
          class TileSched_ = void>
struct Config {
    static constexpr bool kSparse = Sparse_;
    static constexpr bool kStreamK = std::is_same_v<TileSched_, StreamKGdcScheduler>;
    using Elem = Elem_; /* int8_t or E4M3, both operands */
    using Acc = AccOf<Elem_>;
    using OpClass = std::conditional_t<Sparse_, cutlass::arch::OpClassSparseTensorOp,
                                       cutlass::arch::OpClassTensorOp>;
    using Tile = Tile_;
    static constexpr int kAlignAB = 16; /* 8-bit operands: 16 B */
    static constexpr int kAlignD = 8;   /* bf16: 16 B */
    using EVT = cutlass::epilogue::fusion::Sm90EVT<
        cutlass::epilogue::fusion::Sm90Compute<DequantFn, ElementD, float,
                                               cutlass::FloatRoundStyle::round_to_nearest>,
        cutlass::epilogue::fusion::Sm90AccFetch,
        cutlass::epilogue::fusion::Sm90RowBroadcast<0, Tile, float, float, Stride<_0, _1, _0>>,
        cutlass::epilogue::fusion::Sm90ColBroadcast<0, Tile, float, float, Stride<_1, _0, _0>>,
        cutlass::epilogue::fusion::Sm90ColBroadcast<0, Tile, cutlass::bfloat16_t, float,
                                                    Stride<_1, _0, _0>>>;
    using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, OpClass, Tile, Cluster_,
        cutlass::epilogue::collective::EpilogueTileAuto, Acc, float, void, LayoutTagD, kAlignD,
        ElementD, LayoutTagD, kAlignD, ESched_, EVT>::CollectiveOp;
    using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
        cutlass::arch::Sm90, OpClass, Elem, LayoutTagA, kAlignAB,
        Elem, LayoutTagB, kAlignAB, Acc, Tile, Cluster_,
        cutlass::gemm::collective::StageCountAutoCarveout<
            static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
        KSched_>::CollectiveOp;
    using Kernel = cutlass::gemm::kernel::GemmUniversal<ProblemShape, Mainloop, Epilogue, TileSched_>;
    using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;
    using StrideA = typename Kernel::StrideA; /* dense only (sparse: SparseConfig's layout) */
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
};

/* The two best of the harness's first four (docs/results/h100.md): Cooperative 128x256
 * (tokens) wins from a few waves of tiles up, Pingpong 128x128 below; the
 * dense baseline and FP8 take the same two (both 8-bit: the same K tile of
 * 128 bytes, the same shared-memory budget). The sparse Pingpong takes a K
 * tile of 256: its compressed weight rows are then 128 bytes (the 128-byte
 * swizzle, half the pipeline barriers per MAC) and it still holds 4 stages;
 * on the H100 it beat the K-128 tile in all 120 measured cases (mean 13%,
 * the K-tile-256 section there). Coop stays at K 128: at 256 it drops
 * to 2 stages and loses. CUTLASS derives the compressed layout from
 * min(tile K, 128), so all variants still read the same weights (asserted
 * below). The dense Pingpong keeps K 128 (K 256 not measured there). */
template <class Elem, class Int8Sched, class Fp8Sched>
using SchedOf = std::conditional_t<std::is_same_v<Elem, E4M3>, Fp8Sched, Int8Sched>;
template <bool Sparse, class Elem>
using Coop = Config<Sparse, Elem, Shape<_128, _256, _128>, Shape<_2, _1, _1>,
                    SchedOf<Elem, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
                            cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8FastAccum>,
                    cutlass::epilogue::TmaWarpSpecializedCooperative>;
template <bool Sparse, class Elem>
using Ping = Config<Sparse, Elem, Shape<_128, _128, std::conditional_t<Sparse, _256, _128>>,
                    Shape<_1, _1, _1>,
                    SchedOf<Elem, cutlass::gemm::KernelTmaWarpSpecializedPingpong,
                            cutlass::gemm::KernelTmaWarpSpecializedPingpongFP8FastAccum>,
                    cutlass::epilogue::TmaWarpSpecialized>;
/* Decode: 64 tokens per tile, 128 weight rows, no cluster (nothing to
 * multicast: the tokens' tile is small), stream-K (see the top). The
 * pingpong kernel has no stream-K scheduler, hence cooperative. */
template <bool Sparse, class Elem>
using Skinny = Config<Sparse, Elem, Shape<_128, _64, _128>, Shape<_1, _1, _1>,
                      SchedOf<Elem, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
                              cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8FastAccum>,
                      cutlass::epilogue::TmaWarpSpecializedCooperative, StreamKGdcScheduler>;
/* The compressed weight layout of element type Elem (both variants read it). */
template <class Elem>
using SparseConfigOf = typename Coop<true, Elem>::Mainloop::SparseConfig;
static_assert(std::is_same_v<SparseConfigOf<int8_t>,
                             typename Ping<true, int8_t>::Mainloop::SparseConfig>,
              "both INT8 variants must read the same compressed weight layout");
static_assert(std::is_same_v<SparseConfigOf<E4M3>,
                             typename Ping<true, E4M3>::Mainloop::SparseConfig>,
              "both FP8 variants must read the same compressed weight layout");
static_assert(std::is_same_v<SparseConfigOf<int8_t>,
                             typename Skinny<true, int8_t>::Mainloop::SparseConfig> &&
                  std::is_same_v<SparseConfigOf<E4M3>,
                                 typename Skinny<true, E4M3>::Mainloop::SparseConfig>,
              "the stream-K variants must read the same compressed weight layout");

/* One launch's operands (device pointers). */
struct Launch {
    const void *wc, *meta, *q; /* dense: wc = W (n_pad, K'), meta NULL */
    const float *sa, *sb;
    const uint16_t *bias;
    int m, n, kp;
    void *y; /* (m, n) bf16, ld n */
    int device, sms;
    int order; /* (raster << 4) | log2(swizzle) */
    int splits; /* stream-K configs: 0 = CUTLASS's stream-K heuristic, s >= 1 = split-K by s */
    int pdl;    /* launch as a programmatic dependent launch (the kernels wait for the
                   previous grid: CUTLASS_ENABLE_GDC_FOR_SM90); the caller decides it
                   as for its other kernels (SS_PDL, SS_PDL_MAX_ROWS) */
};

/* The mainloop's operands: compressed W' + metadata, or the dense W. */
template <class Cfg>
inline typename Cfg::Mainloop::Arguments mainloop_args(const Launch &L, ProblemShape ps) {
    using T = typename Cfg::Elem;
    auto stride_b = cutlass::make_cute_packed_stride(typename Cfg::StrideB{}, make_shape(L.m, L.kp, 1));
    if constexpr (Cfg::kSparse) {
        using SC = SparseConfigOf<T>;
        return {(const T *)L.wc, SC::fill_layoutA(ps), (const T *)L.q, stride_b,
                (const typename Cfg::Mainloop::ElementE *)L.meta, SC::fill_layoutE(ps)};
    } else {
        auto stride_a = cutlass::make_cute_packed_stride(typename Cfg::StrideA{},
                                                         make_shape(L.n, L.kp, 1));
        return {(const T *)L.wc, stride_a, (const T *)L.q, stride_b};
    }
}

/* Builds the arguments (TMA descriptors: a few µs of host work), takes the
 * workspace from the context and runs on `stream`. Not static: sm90dense.cu
 * instantiates the dense pair for sm90sp.cu. */
template <class Cfg>
ss_status run(const Launch &L, ss_cuda_buf *ws, const char *name, cudaStream_t stream) {
    ProblemShape ps{L.n, L.m, L.kp, 1};
    const char *kind = Cfg::kSparse ? "sparse" : "dense";
    auto stride_d = cutlass::make_cute_packed_stride(typename Cfg::StrideD{}, make_shape(L.n, L.m, 1));
    cutlass::KernelHardwareInfo hw;
    hw.device_id = L.device;
    hw.sm_count = L.sms;
    typename Cfg::Gemm::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        ps,
        mainloop_args<Cfg>(L, ps),
        {{{}, {L.sa, 0.f, {}}, {L.sb, 0.f, {}}, {(const cutlass::bfloat16_t *)L.bias, {}, {}}, {}},
         nullptr,
         stride_d,
         (ElementD *)L.y,
         stride_d},
        hw};
    using Raster = cutlass::gemm::kernel::detail::RasterOrderOptions;
    args.scheduler.max_swizzle_size = 1 << (L.order & 15);
    args.scheduler.raster_order = (L.order >> 4) == 1   ? Raster::AlongM
                                  : (L.order >> 4) == 2 ? Raster::AlongN
                                                        : Raster::Heuristic;
    if constexpr (Cfg::kStreamK) {
        /* INT8: the peers of a tile add their S32 partials atomically in any
         * order (integer sums: the same result), instead of CUTLASS's default
         * turnstile that serializes them; FP8 keeps the turnstile, so its
         * float sums are added in one order and a run repeats bit for bit. */
        using Decomp = cutlass::gemm::kernel::detail::DecompositionMode;
        using Reduce = cutlass::gemm::kernel::detail::ReductionMode;
        args.scheduler.splits = L.splits > 0 ? L.splits : 1;
        args.scheduler.decomposition_mode = L.splits > 0 ? Decomp::SplitK : Decomp::Heuristic;
        args.scheduler.reduction_mode = std::is_same_v<typename Cfg::Acc, int32_t>
                                            ? Reduce::Nondeterministic
                                            : Reduce::Deterministic;
    }
    typename Cfg::Gemm gemm;
    cutlass::Status st = gemm.can_implement(args);
    if (st != cutlass::Status::kSuccess)
        return ss_fail(SS_EINVAL, "tensor '%s': CUTLASS %s GEMM M %d N %d K' %d refused: %s",
                       name, kind, L.m, L.n, L.kp, cutlass::cutlassGetStatusString(st));
    size_t wsb = Cfg::Gemm::get_workspace_size(args);
    if (wsb)
        SS_TRY(ss_cuda_buf_reserve(ws, wsb, name, "GEMM workspace"));
    st = gemm.initialize(args, wsb ? ws->p : nullptr, stream);
    if (st == cutlass::Status::kSuccess)
        st = gemm.run(stream, nullptr, L.pdl != 0);
    if (st != cutlass::Status::kSuccess) {
        cudaError_t e = cudaGetLastError();
        return ss_fail(SS_ECUDA, "tensor '%s': CUTLASS %s GEMM M %d N %d K' %d: %s (%s)", name,
                       kind, L.m, L.n, L.kp, cutlass::cutlassGetStatusString(st), cudaGetErrorString(e));
    }
    return SS_OK;
}

/* Built in sm90dense.cu (explicit instantiations). */
extern template ss_status run<Coop<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                                   cudaStream_t);
extern template ss_status run<Ping<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                                   cudaStream_t);
extern template ss_status run<Coop<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                                 cudaStream_t);
extern template ss_status run<Ping<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                                 cudaStream_t);
extern template ss_status run<Skinny<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                                     cudaStream_t);
extern template ss_status run<Skinny<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                                   cudaStream_t);
} // namespace ss_sm90sp

#endif
