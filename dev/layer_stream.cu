/* dev harness: the ceiling of a persistent decode step — how fast one
 * resident grid can stream a step's projection weights when dependent
 * projections are separated by grid-wide barriers, against one kernel per
 * projection (what the engine launches today).
 *
 * Why: at decode M 64 the projection GEMMs are ~78% of a step (H100,
 * BitNet-2B INT8: 65-77 µs per layer against 24 µs of weight bytes at the
 * copy rate), and the stream GEMM's phase times (docs/results/h100.md §6.0b)
 * put the loss in fixed cost per block and launch (prologue, split-K
 * exchange, epilogue, waves), not in the weight stream. A kernel that stays
 * resident over a layer's (or a step's) projections pays launch and prologue
 * once and separates dependent projections by a grid barrier instead. This
 * harness measures the two numbers that design stands on, with no math in
 * the way: the read rate of the weights alone, and what a barrier or a launch
 * between projections costs.
 *
 * Workload: BitNet-2B's four projections per layer (qkv 3840 x 2560, o 2560 x
 * 2560, gate_up 13824 x 2560, down 2560 x 6912; INT8 dense: 69.5 MB per layer,
 * 2:4 compressed with metadata: x 0.625) over 30 layers, 2.09 GB per step
 * (dense), far past L2. Every variant reads every byte once per step
 * (16-byte loads, 8 in flight per thread, folded into a checksum that is
 * checked against the CPU's so no load can be dropped):
 *   one kernel      the whole step as one flat read (the read ceiling)
 *   launches        one kernel per projection, captured in a CUDA graph
 *   launches + PDL  the same as programmatic dependent launches (each waits
 *                   for the previous before reading, as a GEMM waits for its
 *                   activations); "weights early": each thread's first 8
 *                   loads go out before the wait (weights depend on nothing)
 *   persistent      one cooperative grid, a grid barrier after each
 *                   projection (1 or 2 per projection: 2 models a quant pass
 *                   between projections)
 *   persistent, no barrier  the same grid with the barriers left out
 *   weights ahead   persistent, each thread's first 8 loads of the next
 *                   projection issued before the barrier
 *   persistent + token reads  1 barrier per projection, and half of each
 *                   projection's bytes read again from a 442 KB token buffer
 *                   in L2 (what a 128-row tile GEMM's blocks read at 64 tokens)
 * Prints µs per step, TB/s and % of the measured device copy rate, and the
 * cost per barrier / per launch against the flat read.
 * Usage: dev_layer_stream [layers]   (default 30)
 *
 * Measured (H100, docs/results/h100.md §6.0c): flat read 654 µs per step;
 * one kernel per projection 1082 µs (PDL 1041, weights before the wait 986);
 * one resident grid, a barrier per projection 921 µs, the next projection's
 * loads issued before the barrier 836 µs. Today's GEMMs take 2.0-2.3 ms for
 * the same bytes: the GEMM kernels are the first gap, the launch structure
 * the second (~15%).
 */
#include <cooperative_groups.h>
#include <stdint.h>
#include <string.h>
#include <vector>

#include "dev_common.h"

namespace cg = cooperative_groups;

namespace {

constexpr int kThreads = 512, kUnroll = 8;

struct Phase {
    const uint4 *p;
    int64_t n16; /* 16-byte words */
};

/* A thread's first kUnroll words of a phase (grid-stride), loaded ahead:
 * before a PDL wait or a grid barrier, since no kernel writes the weights. */
struct Batch {
    uint4 v[kUnroll];
};

__device__ __forceinline__ void load_batch(const uint4 *p, int64_t end, int64_t tid, int64_t nthreads, Batch &b) {
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
        const int64_t i = tid + u * nthreads;
        b.v[u] = i < end ? __ldg(p + i) : make_uint4(0, 0, 0, 0);
    }
}

__device__ __forceinline__ uint32_t xor_batch(const Batch &b) {
    uint32_t acc = 0;
#pragma unroll
    for (int u = 0; u < kUnroll; u++)
        acc ^= b.v[u].x ^ b.v[u].y ^ b.v[u].z ^ b.v[u].w;
    return acc;
}

/* XOR of the words [0, end) this thread reads (grid-stride, 8 loads in
 * flight), from its word `from` on (tid, or past a batch loaded ahead). */
__device__ __forceinline__ uint32_t read_range(const uint4 *p, int64_t end, int64_t tid, int64_t nthreads,
                                               int64_t from) {
    uint32_t acc = 0;
    int64_t i = from;
    for (; i + (kUnroll - 1) * nthreads < end; i += kUnroll * nthreads) {
        uint4 v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            v[u] = __ldg(p + i + u * nthreads);
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < end; i += nthreads) {
        uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    return acc;
}

__device__ __forceinline__ void fold(uint32_t acc, uint32_t *sink) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0)
        atomicXor(sink, acc);
}

/* One phase (or the flat read) by the whole grid, grid-stride. pdl: 1 waits
 * for the previous kernel before any load, 2 loads its first batch of
 * weights before the wait (as a GEMM may: only its activations depend on the
 * previous kernel). */
__global__ void __launch_bounds__(kThreads) read_kernel(Phase ph, uint32_t *sink, int pdl) {
    const int64_t nt = (int64_t)gridDim.x * kThreads, tid = (int64_t)blockIdx.x * kThreads + threadIdx.x;
    Batch b;
    if (pdl == 2)
        load_batch(ph.p, ph.n16, tid, nt, b);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 /* PDL is sm_90: elsewhere the launches are plain */
    if (pdl)
        asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    uint32_t acc = pdl == 2 ? xor_batch(b) ^ read_range(ph.p, ph.n16, tid, nt, tid + kUnroll * nt)
                            : read_range(ph.p, ph.n16, tid, nt, tid);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (pdl)
        asm volatile("griddepcontrol.launch_dependents;");
#endif
    fold(acc, sink);
}

/* The token side of a GEMM phase: `n16` words of the (L2-resident) token
 * rows `tok` (tok_n16 words, read cyclically), as the blocks of a 128-row
 * tile GEMM at 64 tokens read half the weight bytes again from L2. Returns
 * the XOR of the reads (the token rows are zeros: the caller only keeps the
 * loads alive with it, the checksum stays the weights'). */
__device__ __forceinline__ uint32_t read_tokens(const uint4 *tok, int64_t tok_n16, int64_t n16, int64_t tid,
                                                int64_t nthreads) {
    uint32_t acc = 0;
    for (int64_t i = tid; i < n16; i += nthreads) {
        uint4 v = __ldg(tok + i % tok_n16);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    return acc;
}

/* Every phase in order by one resident grid; `barriers` grid syncs after
 * each; tok != NULL adds half the phase's bytes of token reads from L2;
 * ahead: each thread loads its first batch of the next phase before the
 * barriers (weights in flight across them). */
__global__ void __launch_bounds__(kThreads) persistent_kernel(const Phase *phases, int n, int barriers,
                                                              const uint4 *tok, int64_t tok_n16, int ahead,
                                                              uint32_t *sink) {
    cg::grid_group grid = cg::this_grid();
    const int64_t nt = (int64_t)gridDim.x * kThreads, tid = (int64_t)blockIdx.x * kThreads + threadIdx.x;
    uint32_t acc = 0, tacc = 0;
    Batch b;
    bool have = false;
    for (int k = 0; k < n; k++) {
        if (have)
            acc ^= xor_batch(b);
        acc ^= read_range(phases[k].p, phases[k].n16, tid, nt, have ? tid + kUnroll * nt : tid);
        have = ahead && k + 1 < n;
        if (have)
            load_batch(phases[k + 1].p, phases[k + 1].n16, tid, nt, b);
        if (tok)
            tacc += read_tokens(tok, tok_n16, phases[k].n16 / 2, tid, nt); /* kept, never folded */
        for (int b = 0; b < barriers; b++)
            grid.sync();
    }
    fold(acc ^ (tacc == 0x9e3779b9u ? 1u : 0u), sink); /* tacc used: the token loads stay */
}

uint32_t host_xor(const std::vector<uint32_t> &w) {
    uint32_t a = 0;
    for (uint32_t x : w)
        a ^= x;
    return a;
}

} // namespace

int main(int argc, char **argv) {
    dev_banner();
    const int layers = argc > 1 ? atoi(argv[1]) : 30;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    const double copy_gbs = d2d_copy_gbs();
    printf("# device copy %.3f TB/s (read + write)\n", copy_gbs / 1e3);
    const int64_t shapes[4][2] = {{3840, 2560}, {2560, 2560}, {13824, 2560}, {2560, 6912}};
    int per_sm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent_kernel, kThreads, 0));
    const int grid = per_sm * prop.multiProcessorCount;
    uint32_t *sink;
    CK(cudaMalloc(&sink, 4));
    /* token rows: 64 tokens x K 6912 INT8 (the widest K), zeros (their reads must not change the checksum) */
    const int64_t tok_n16 = 64 * 6912 / 16;
    uint4 *tok;
    CK(cudaMalloc(&tok, (size_t)tok_n16 * 16));
    CK(cudaMemset(tok, 0, (size_t)tok_n16 * 16));
    for (double frac : {1.0, 0.625}) { /* INT8 dense, then 2:4 values + metadata */
        std::vector<Phase> ph;
        int64_t total16 = 0;
        for (int l = 0; l < layers; l++)
            for (auto &s : shapes) {
                int64_t bytes = (int64_t)((double)(s[0] * s[1]) * frac) / 16 * 16;
                ph.push_back({nullptr, bytes / 16});
                total16 += bytes / 16;
            }
        /* one allocation, phases laid out back to back (the flat read covers it exactly) */
        uint4 *base;
        CK(cudaMalloc(&base, (size_t)total16 * 16));
        std::vector<uint32_t> host((size_t)total16 * 4);
        uint64_t seed = 7;
        for (auto &x : host)
            x = (uint32_t)lcg(&seed);
        CK(cudaMemcpy(base, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
        const uint32_t want = host_xor(host);
        int64_t off = 0;
        for (auto &p : ph) {
            p.p = base + off;
            off += p.n16;
        }
        Phase *d_ph;
        CK(cudaMalloc(&d_ph, ph.size() * sizeof(Phase)));
        CK(cudaMemcpy(d_ph, ph.data(), ph.size() * sizeof(Phase), cudaMemcpyHostToDevice));
        const double bytes = (double)total16 * 16;
        const int n = (int)ph.size();
        /* graphs are captured on st; everything runs on the legacy stream, where time_us records */
        cudaStream_t st, run_st = 0;
        CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));

        /* launches (plain or PDL), captured once, replayed */
        auto capture = [&](int pdl) {
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
            for (int k = 0; k < n; k++) {
                cudaLaunchConfig_t cfg = {};
                cfg.gridDim = dim3((unsigned)grid);
                cfg.blockDim = dim3(kThreads);
                cfg.stream = st;
                cudaLaunchAttribute a;
                a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
                a.val.programmaticStreamSerializationAllowed = 1;
                cfg.attrs = &a;
                cfg.numAttrs = pdl ? 1 : 0;
                CK(cudaLaunchKernelEx(&cfg, read_kernel, ph[k], sink, pdl));
            }
            CK(cudaStreamEndCapture(st, &g));
            CK(cudaGraphInstantiate(&ge, g, 0));
            CK(cudaGraphDestroy(g));
            return ge;
        };
        cudaGraphExec_t plain = capture(0), pdl = capture(1), pdl_early = capture(2);
        auto persistent = [&](int barriers, bool tokens = false, int ahead = 0) {
            int nn = n, bb = barriers;
            const uint4 *tp = tokens ? tok : nullptr;
            int64_t tn = tok_n16;
            void *args[] = {(void *)&d_ph, (void *)&nn, (void *)&bb, (void *)&tp, (void *)&tn, (void *)&ahead,
                            (void *)&sink};
            CK(cudaLaunchCooperativeKernel((const void *)persistent_kernel, dim3((unsigned)grid), dim3(kThreads), args,
                                           0, run_st));
        };
        /* checksums: each variant once (odd count of XORs of the same data = the data's XOR) */
        auto check = [&](const char *what, auto run) {
            CK(cudaMemsetAsync(sink, 0, 4, run_st));
            run();
            uint32_t got;
            CK(cudaMemcpyAsync(&got, sink, 4, cudaMemcpyDeviceToHost, run_st));
            CK(cudaStreamSynchronize(run_st));
            if (got != want) {
                fprintf(stderr, "checksum mismatch (%s): %08x != %08x\n", what, got, want);
                exit(1);
            }
        };
        Phase flat = {base, total16};
        auto run_flat = [&] { read_kernel<<<grid, kThreads, 0, run_st>>>(flat, sink, 0); };
        auto run_plain = [&] { CK(cudaGraphLaunch(plain, run_st)); };
        auto run_pdl = [&] { CK(cudaGraphLaunch(pdl, run_st)); };
        auto run_pdl_early = [&] { CK(cudaGraphLaunch(pdl_early, run_st)); };
        check("one kernel", run_flat);
        check("launches", run_plain);
        check("launches + PDL", run_pdl);
        check("launches + PDL, weights early", run_pdl_early);
        check("persistent, weights ahead", [&] { persistent(1, false, 1); });
        check("persistent", [&] { persistent(1); });
        check("persistent + tokens", [&] { persistent(1, true); });
        printf("\n%s: %d layers x 4 projections = %d phases, %.1f MB per step; grid %d x %d threads (%d per SM)\n",
               frac == 1.0 ? "INT8 dense" : "2:4 (values + metadata)", layers, n, bytes / 1e6, grid, kThreads,
               per_sm);
        printf("%-34s %10s %8s %8s %14s\n", "variant", "us/step", "TB/s", "% copy", "us per switch");
        double t_flat = 0;
        auto row = [&](const char *what, double us, int switches) {
            double tbs = bytes / (us * 1e-6) / 1e12;
            if (switches == 0) {
                printf("%-34s %10.1f %8.3f %7.1f%% %14s\n", what, us, tbs, 100.0 * tbs * 1e3 / copy_gbs, "-");
            } else {
                printf("%-34s %10.1f %8.3f %7.1f%% %14.2f\n", what, us, tbs, 100.0 * tbs * 1e3 / copy_gbs,
                       (us - t_flat) / switches);
            }
        };
        auto timed = [&](auto run) { return time_us([&](int) { run(); }, 1, 5, 7); };
        t_flat = timed(run_flat);
        row("one kernel (flat read)", t_flat, 0);
        row("persistent, no barrier", timed([&] { persistent(0); }), 0);
        row("persistent, 1 grid barrier/proj", timed([&] { persistent(1); }), n);
        row("persistent, 2 grid barriers/proj", timed([&] { persistent(2); }), 2 * n);
        row("persistent, 1 barrier + token reads", timed([&] { persistent(1, true); }), n);
        row("persistent, 1 barrier, weights ahead", timed([&] { persistent(1, false, 1); }), n);
        row("persistent, 2 barriers, weights ahead", timed([&] { persistent(2, false, 1); }), 2 * n);
        row("persistent, 1 barrier + tokens, ahead", timed([&] { persistent(1, true, 1); }), n);
        row("launches (graph)", timed(run_plain), n);
        row("launches + PDL (graph)", timed(run_pdl), n);
        row("launches + PDL, weights early", timed(run_pdl_early), n);
        CK(cudaGraphExecDestroy(plain));
        CK(cudaGraphExecDestroy(pdl));
        CK(cudaGraphExecDestroy(pdl_early));
        CK(cudaStreamDestroy(st));
        CK(cudaFree(d_ph));
        CK(cudaFree(base));
    }
    CK(cudaFree(sink));
    CK(cudaFree(tok));
    return 0;
}
