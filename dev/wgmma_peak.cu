/* dev harness: the tensor-core ceiling of this H100, dense wgmma against 2:4
 * sparse wgmma.sp, fed from shared memory with every SM busy.
 *
 * Why: our CUTLASS SM90 sparse GEMM and cuSPARSELt both reach only ~1.25-1.36x
 * the dense GEMM's speed at the BitNet-2B shapes, with the board at its 700 W
 * cap; 2_8 beating dense by 1.22x needs >= 1.83x. This harness takes the GEMM out (no
 * global loads, no TMA, no epilogue): each CTA keeps its A and B tiles in
 * shared memory and its warpgroups issue wgmma back to back for ~250 ms, so
 * what remains is the tensor cores' rate at the clock and power they settle
 * at with random (non-zero) data. That rate is the most any GEMM can get.
 *
 * Measured, per case (type x N x dense / sparse x A source x warpgroups per
 * CTA x CTAs per SM x smem layout):
 *   - TOPS: 2*64*N*32 per dense m64nNk32, 2*64*N*64 per sparse m64nNk64
 *     (dense-equivalent: the 2:4 instruction covers K 64), % of the nominal
 *     peak (1979 dense / 3958 sparse TOPS at 1830 MHz, H100 SXM) and % of the
 *     peak scaled to the measured mean SM clock (= tensor-core efficiency per
 *     cycle), sparse / dense ratio at the same configuration;
 *   - NVML (ss_clocks_*, dlopen, nothing to link): mean SM clock, mean board power
 *     (instantaneous field when served), fraction of samples with a power /
 *     thermal clock event reason, sampled every ~2 ms after the first 25%.
 * Operands: INT8 s8.s8 -> s32 and FP8 e4m3.e4m3 -> f32; A from shared memory
 * (SS), from registers loaded once (RS: the tensor cores without A's smem
 * traffic) or from registers reloaded from smem by ld.shared for every
 * instruction (RSld: what a real RS mainloop pays); B always from smem.
 * Random non-zero bytes (FP8 without NaN: power depends on the bit activity);
 * metadata random valid 2:4 index pairs per thread. Smem tiles are K-major,
 * 128 B rows, with the 128 B swizzle (what CUTLASS uses) or none (interleaved
 * core matrices). 1 or 2 consumer warpgroups per CTA (2 = the cooperative
 * 128 x N tile), 1 or 2 CTAs per SM, one persistent loop of wgmma groups
 * (fence, S instructions, commit, wait_group 1: CUTLASS's mainloop rhythm).
 *
 * Validation first: one instruction per variant (48: type x N x sparse x A
 * source x layout, two warpgroups) against a CPU reference, which pins the
 * descriptor encoding, the accumulator layout, the RS A-fragment layout and
 * the metadata layout (CuTe's ELayout_64x64: thread (warp w, lane l) holds
 * row 16w + l/4 + 8(l%2), dense K [32((l/2)%2), +32), nibble j = group j of
 * that half, bits [1:0] the first kept index, [3:2] the second; sparsity
 * selector 0). INT8 exact; FP8 within 2e-3 of sum|products| (the tensor
 * core's f32 accumulation keeps fewer bits than IEEE; wrong layouts are off
 * by O(1) of it).
 *
 * sm_90a only (wgmma is an arch-specific instruction): CMake builds the dev
 * target dev_wgmma_peak for sm_90a alone when 90 is in CMAKE_CUDA_ARCHITECTURES;
 * a build without it compiles the kernels empty and the launcher refuses
 * ("skipped"). NVML through the kernel benchmark's sampler (src/bench/clocks.h).
 * Usage: dev_wgmma_peak [quick]   (quick: ~60 ms per case, SW128 layout only)
 *
 * Measured (H100 SXM, 700 W cap, 2026-11-26; docs/results/h100.md §3 has the table):
 * dense wgmma 100% of the clock-adjusted peak (INT8 ~1800 TOPS at ~1650 MHz, FP8 ~1620
 * at ~1500 MHz under the cap); sparse SS 79-80% of it at N 128, 88-90% at N 256 = the
 * 128 B/clk/SM smem read limit (A + B bytes per instruction), so sparse/dense 1.64x /
 * 1.75x; sparse RS (A in registers, no smem traffic) 100% -> 1.9x under the cap; RS
 * reloaded by ld.shared 67% / 77-83%: no way around the smem port.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <vector>

#include "bench/clocks.h"
#include "slidesparse/linear.h"
#include "dev_common.h"

namespace {

constexpr int kRowBytes = 128;          // every smem tile row: 128 B of K
constexpr int kATile = 64 * kRowBytes;  // one warpgroup's A (64 rows)
constexpr int kMaxWG = 2;
constexpr int kMaxN = 256;
constexpr int kImage = kMaxWG * kATile + kMaxN * kRowBytes;

/* Accumulators are held as 32-bit words for both types (FP8: f32 bit patterns
 * in .b32 registers, which PTX accepts for .f32 operands): with float
 * variables ptxas serialized the FP8 wgmma pipeline (C7514 / C7511). */

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SS_WGMMA 1
#endif

#ifdef SS_WGMMA
/* Inline asm needs its operand lists spelled out: N/2 accumulators per thread. */
#define ACC64                                                                                      \
    "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"                                       \
    "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"                             \
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"                             \
    "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define ACC128                                                                                     \
    ACC64 ","                                                                                      \
    "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"                             \
    "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"                             \
    "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,"                 \
    "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"
#define D8(C, i) C(d[i]), C(d[i + 1]), C(d[i + 2]), C(d[i + 3]), C(d[i + 4]), C(d[i + 5]), C(d[i + 6]), C(d[i + 7])
#define D64(C) D8(C, 0), D8(C, 8), D8(C, 16), D8(C, 24), D8(C, 32), D8(C, 40), D8(C, 48), D8(C, 56)
#define D128(C) D64(C), D8(C, 64), D8(C, 72), D8(C, 80), D8(C, 88), D8(C, 96), D8(C, 104), D8(C, 112), D8(C, 120)
/* scale-d = 1 (accumulate), sparsity selector 0, FP8 scale-a / scale-b = 1 */
#define WG(OP, ACC, TAIL, OUTS, ...)                                                               \
    asm volatile("wgmma.mma_async" OP " {" ACC "}, " TAIL ";\n" : OUTS : __VA_ARGS__ : "memory")
#define I8 ".s32.s8.s8"
#define F8 ".f32.e4m3.e4m3"
#define DN(n) ".sync.aligned.m64n" #n "k32"
#define SP(n) ".sp.sync.aligned.m64n" #n "k64"

/* One wgmma of the variant: d += A (64 x 32 B or 64 x 64 compressed to 32 B) * B^T (N x 32 / 64 B). */
template <int N, bool FP8, bool SPARSE, bool RS>
__device__ __forceinline__ void mma(uint32_t (&d)[N / 2], uint64_t da, const uint32_t (&a)[4],
                                    uint64_t db, uint32_t e) {
    // clang-format off
    if constexpr (N == 128 && !FP8 && !SPARSE && !RS) WG(DN(128) I8, ACC64, "%64, %65, 1", D64("+r"), "l"(da), "l"(db));
    if constexpr (N == 128 && !FP8 && SPARSE && !RS)  WG(SP(128) I8, ACC64, "%64, %65, %66, 0, 1", D64("+r"), "l"(da), "l"(db), "r"(e));
    if constexpr (N == 128 && !FP8 && !SPARSE && RS)  WG(DN(128) I8, ACC64, "{%64,%65,%66,%67}, %68, 1", D64("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    if constexpr (N == 128 && !FP8 && SPARSE && RS)   WG(SP(128) I8, ACC64, "{%64,%65,%66,%67}, %68, %69, 0, 1", D64("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(e));
    if constexpr (N == 128 && FP8 && !SPARSE && !RS)  WG(DN(128) F8, ACC64, "%64, %65, 1, 1, 1", D64("+r"), "l"(da), "l"(db));
    if constexpr (N == 128 && FP8 && SPARSE && !RS)   WG(SP(128) F8, ACC64, "%64, %65, %66, 0, 1, 1, 1", D64("+r"), "l"(da), "l"(db), "r"(e));
    if constexpr (N == 128 && FP8 && !SPARSE && RS)   WG(DN(128) F8, ACC64, "{%64,%65,%66,%67}, %68, 1, 1, 1", D64("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    if constexpr (N == 128 && FP8 && SPARSE && RS)    WG(SP(128) F8, ACC64, "{%64,%65,%66,%67}, %68, %69, 0, 1, 1, 1", D64("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(e));
    if constexpr (N == 256 && !FP8 && !SPARSE && !RS) WG(DN(256) I8, ACC128, "%128, %129, 1", D128("+r"), "l"(da), "l"(db));
    if constexpr (N == 256 && !FP8 && SPARSE && !RS)  WG(SP(256) I8, ACC128, "%128, %129, %130, 0, 1", D128("+r"), "l"(da), "l"(db), "r"(e));
    if constexpr (N == 256 && !FP8 && !SPARSE && RS)  WG(DN(256) I8, ACC128, "{%128,%129,%130,%131}, %132, 1", D128("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    if constexpr (N == 256 && !FP8 && SPARSE && RS)   WG(SP(256) I8, ACC128, "{%128,%129,%130,%131}, %132, %133, 0, 1", D128("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(e));
    if constexpr (N == 256 && FP8 && !SPARSE && !RS)  WG(DN(256) F8, ACC128, "%128, %129, 1, 1, 1", D128("+r"), "l"(da), "l"(db));
    if constexpr (N == 256 && FP8 && SPARSE && !RS)   WG(SP(256) F8, ACC128, "%128, %129, %130, 0, 1, 1, 1", D128("+r"), "l"(da), "l"(db), "r"(e));
    if constexpr (N == 256 && FP8 && !SPARSE && RS)   WG(DN(256) F8, ACC128, "{%128,%129,%130,%131}, %132, 1, 1, 1", D128("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    if constexpr (N == 256 && FP8 && SPARSE && RS)    WG(SP(256) F8, ACC128, "{%128,%129,%130,%131}, %132, %133, 0, 1, 1, 1", D128("+r"), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(e));
    // clang-format on
}

/* Matrix descriptor of a K-major tile of 128 B rows at smem byte address `addr`
 * (1024-aligned): 8-row core-matrix groups 1024 B apart (SBO); without swizzle
 * the 16 B K chunks of a core matrix are 128 B apart (LBO), with the 128 B
 * swizzle LBO is unused and K advances inside the row. */
template <bool SW> __device__ __forceinline__ uint64_t make_desc(uint32_t addr) {
    uint64_t lbo = SW ? 1 : kRowBytes >> 4;
    return (uint64_t)((addr & 0x3FFFF) >> 4) | lbo << 16 | (uint64_t)(1024 >> 4) << 32 | (SW ? 1ull << 62 : 0ull);
}
/* The descriptor moved to K byte `k` (multiple of 16) of the tile's rows. */
template <bool SW> __device__ __forceinline__ uint64_t desc_at(uint64_t d, int k) {
    return d + (SW ? k >> 4 : (k >> 4) * (kRowBytes >> 4));
}
#endif

/* byte (r, c) of a K-major tile of 128 B rows in shared memory */
__host__ __device__ inline int smem_off(int r, int c, bool sw) {
    return sw ? (r / 8) * 1024 + (r % 8) * 128 + (((c / 16) ^ (r % 8)) * 16) + c % 16
              : (r / 8) * 1024 + (c / 16) * 128 + (r % 8) * 16 + c % 16;
}

/* Where A comes from: AM_SS its smem descriptor; AM_RS registers loaded once
 * (the tensor cores' own ceiling with A off the shared-memory path); AM_RSLD
 * registers reloaded from shared memory (ld.shared) for every instruction, as
 * a real RS mainloop must (two register sets: a set is rewritten only after
 * wait_group has retired the wgmmas that read it). */
enum { AM_SS = 0, AM_RS = 1, AM_RSLD = 2 };

#ifdef SS_WGMMA
/* The RS A fragment (mma.sync m16n8k32's A per warp: rows 16w + l/4 and +8,
 * K bytes 4(l%4) and +16) of K slice k0 (bytes) from the smem tile at `tile`. */
template <bool SW> __device__ __forceinline__ void lds_frag(uint32_t (&a)[4], uint32_t tile, int t, int k0) {
    const int r = 16 * (t / 32) + (t % 32) / 4, c = k0 + 4 * (t % 4);
    const int off[4] = {smem_off(r, c, SW), smem_off(r + 8, c, SW), smem_off(r, c + 16, SW), smem_off(r + 8, c + 16, SW)};
#pragma unroll
    for (int i = 0; i < 4; i++) // volatile: the tile never changes, the loads must not be hoisted
        asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(a[i]) : "r"(tile + off[i]) : "memory");
}
#endif

/* blockDim = 128 x warpgroups. img: the smem image (host-built for the layout):
 * kMaxWG A tiles then the B tile; a_rows: A as plain rows (kMaxWG*64, 128 B)
 * for the AM_RS fragments; meta: one 2:4 metadata word per thread. VERIFY:
 * one instruction (K slice 0), all accumulators to out (CTA 0); else `iters`
 * rounds of S instructions (one 128 B row of B's K) and one word per thread
 * (two kernels: ptxas serializes the wgmma pipeline of a function in which
 * other code reads the accumulators between wgmmas). */
template <int N, bool FP8, bool SPARSE, int AM, bool SW, bool VERIFY>
__global__ void __launch_bounds__(256) wgmma_loop(const uint4 *img, const uint8_t *a_rows, const uint32_t *meta,
                                                  long long iters, uint32_t *out) {
#ifdef SS_WGMMA
    extern __shared__ uint8_t smem_raw[];
    uint8_t *smem = (uint8_t *)(((uintptr_t)smem_raw + 1023) & ~(uintptr_t)1023);
    const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
    uint4 *dst = (uint4 *)smem;
    for (int i = threadIdx.x; i < kImage / 16; i += blockDim.x)
        dst[i] = img[i];
    // generic-proxy writes, read by wgmma through the async proxy
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const uint32_t base = (uint32_t)__cvta_generic_to_shared(smem), atile = base + wg * kATile;
    const uint64_t da = make_desc<SW>(atile), db = make_desc<SW>(base + kMaxWG * kATile);
    constexpr bool RS = AM != AM_SS;
    uint32_t a[4];
    {
        const int r0 = wg * 64 + 16 * (t / 32) + (t % 32) / 4, c0 = 4 * (t % 4);
        a[0] = *(const uint32_t *)(a_rows + r0 * kRowBytes + c0);
        a[1] = *(const uint32_t *)(a_rows + (r0 + 8) * kRowBytes + c0);
        a[2] = *(const uint32_t *)(a_rows + r0 * kRowBytes + c0 + 16);
        a[3] = *(const uint32_t *)(a_rows + (r0 + 8) * kRowBytes + c0 + 16);
    }
    uint32_t e = meta[wg * 128 + t];
    uint32_t d[N / 2];
#pragma unroll
    for (int i = 0; i < N / 2; i++)
        d[i] = 0;
    constexpr int S = SPARSE ? 2 : 4;    // instructions per 128 B of B's K
    constexpr int KB = SPARSE ? 64 : 32; // B bytes of K per instruction; A: 32 either way
    if constexpr (VERIFY) {
        if constexpr (AM == AM_RSLD)
            lds_frag<SW>(a, atile, t, 0);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        mma<N, FP8, SPARSE, RS>(d, da, a, db, e);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        if (blockIdx.x == 0)
#pragma unroll
            for (int i = 0; i < N / 2; i++)
                out[(wg * 128 + t) * (N / 2) + i] = d[i];
    } else if constexpr (AM == AM_RSLD) {
        uint32_t ra[2][S][4];
        for (long long it = 0; it < iters; it += 2) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
#pragma unroll
                for (int s = 0; s < S; s++)
                    lds_frag<SW>(ra[h][s], atile, t, 32 * s);
                asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
                for (int s = 0; s < S; s++)
                    mma<N, FP8, SPARSE, true>(d, 0, ra[h][s], desc_at<SW>(db, KB * s), e);
                asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
                asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
            }
        }
    } else {
        for (long long it = 0; it < iters; it++) {
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
            for (int s = 0; s < S; s++)
                mma<N, FP8, SPARSE, RS>(d, desc_at<SW>(da, 32 * s), a, desc_at<SW>(db, KB * s), e);
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        }
    }
    if constexpr (!VERIFY) {
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        uint32_t x = 0;
#pragma unroll
        for (int i = 0; i < N / 2; i++)
            x ^= d[i];
        out[blockIdx.x * blockDim.x + threadIdx.x] = x;
    }
#endif
}

/* Whether this build holds the sm_90a kernels (the CMake dev target does not). */
__global__ void probe_kernel(int *ok) {
#ifdef SS_WGMMA
    *ok = 1;
#else
    *ok = 0;
#endif
}

// --- host: data, CPU reference ---------------------------------------------------------------

float e4m3(uint8_t b) {
    int s = b >> 7, ex = (b >> 3) & 15, m = b & 7;
    float v = ex ? ldexpf(1.f + m / 8.f, ex - 7) : ldexpf(m / 8.f, -6);
    return s ? -v : v;
}
double val(uint8_t b, bool fp8) { return fp8 ? e4m3(b) : (double)(int8_t)b; }

/* random byte that is non-zero (and not an FP8 zero or NaN) */
uint8_t rand_byte(uint64_t *s) {
    for (;;) {
        uint8_t b = (uint8_t)(lcg(s) >> 20);
        if ((b & 0x7F) != 0 && (b & 0x7F) != 0x7F)
            return b;
    }
}

/* The 6 valid 2:4 index pairs as a nibble: bits [1:0] first kept, [3:2] second. */
uint32_t rand_meta(uint64_t *s) {
    static const uint8_t pairs[6] = {0x4, 0x8, 0xC, 0x9, 0xD, 0xE};
    uint32_t w = 0;
    for (int j = 0; j < 8; j++)
        w |= (uint32_t)pairs[lcg(s) % 6] << (4 * j);
    return w;
}

struct Data {
    std::vector<uint8_t> a, b; // (kMaxWG*64, 128), (kMaxN, 128)
    std::vector<uint32_t> meta; // kMaxWG*128 threads
    uint8_t *d_rows = nullptr;
    uint32_t *d_meta = nullptr, *d_out = nullptr;
    uint4 *d_img[2] = {nullptr, nullptr}; // [sw]
};

void make_data(Data &D) {
    uint64_t s = 12345;
    D.a.resize(kMaxWG * 64 * kRowBytes);
    D.b.resize(kMaxN * kRowBytes);
    D.meta.resize(kMaxWG * 128);
    for (auto &x : D.a)
        x = rand_byte(&s);
    for (auto &x : D.b)
        x = rand_byte(&s);
    for (auto &x : D.meta)
        x = rand_meta(&s);
    for (int sw = 0; sw < 2; sw++) {
        std::vector<uint8_t> img(kImage);
        for (int r = 0; r < kMaxWG * 64; r++)
            for (int c = 0; c < kRowBytes; c++)
                img[(r / 64) * kATile + smem_off(r % 64, c, sw)] = D.a[r * kRowBytes + c];
        for (int r = 0; r < kMaxN; r++)
            for (int c = 0; c < kRowBytes; c++)
                img[kMaxWG * kATile + smem_off(r, c, sw)] = D.b[r * kRowBytes + c];
        CK(cudaMalloc(&D.d_img[sw], kImage));
        CK(cudaMemcpy(D.d_img[sw], img.data(), kImage, cudaMemcpyHostToDevice));
    }
    CK(cudaMalloc(&D.d_rows, D.a.size()));
    CK(cudaMemcpy(D.d_rows, D.a.data(), D.a.size(), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&D.d_meta, D.meta.size() * 4));
    CK(cudaMemcpy(D.d_meta, D.meta.data(), D.meta.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&D.d_out, 1 << 24));
}

/* The first kept index of group g (0..15) of A row m (0..63) of warpgroup wg:
 * which thread's metadata word and which nibble (CuTe ELayout_64x64). */
int kept(const Data &D, int wg, int m, int g, int j) {
    int w = m / 16, r = m % 16, lane = 4 * (r % 8) + 2 * (g / 8) + r / 8;
    uint32_t nib = (D.meta[wg * 128 + 32 * w + lane] >> (4 * (g % 8))) & 15;
    return (nib >> (2 * j)) & 3;
}

/* One instruction's D (row m, col n) by the CPU: dense K 32, or sparse K 64 (A compressed to 32). */
void reference(const Data &D, int wg, int m, int n, bool fp8, bool sparse, double *ref, double *mag) {
    const uint8_t *ar = &D.a[(wg * 64 + m) * kRowBytes], *br = &D.b[n * kRowBytes];
    *ref = *mag = 0;
    for (int k = 0; k < 32; k++) {
        int kb = sparse ? 4 * (k / 2) + kept(D, wg, m, k / 2, k % 2) : k;
        double p = val(ar[k], fp8) * val(br[kb], fp8);
        *ref += p;
        *mag += fabs(p);
    }
}

typedef void (*kernel_fn)(const uint4 *, const uint8_t *, const uint32_t *, long long, uint32_t *);

struct Variant {
    int n;
    bool fp8, sparse;
    int am; // AM_*
    bool sw;
    kernel_fn fn, one; // the timed loop, the one-instruction check
};

template <int N, bool FP8, bool SP, int AM, bool SW> Variant variant() {
    return {N, FP8, SP, AM, SW, wgmma_loop<N, FP8, SP, AM, SW, false>, wgmma_loop<N, FP8, SP, AM, SW, true>};
}

std::vector<Variant> all_variants() {
    std::vector<Variant> v;
#define V6(N, FP8, SW)                                                                             \
    for (auto x : {variant<N, FP8, false, AM_SS, SW>(), variant<N, FP8, true, AM_SS, SW>(),                \
                   variant<N, FP8, false, AM_RS, SW>(), variant<N, FP8, true, AM_RS, SW>(),                \
                   variant<N, FP8, false, AM_RSLD, SW>(), variant<N, FP8, true, AM_RSLD, SW>()})           \
        v.push_back(x)
    V6(128, false, true); V6(256, false, true); V6(128, true, true); V6(256, true, true);
    V6(128, false, false); V6(256, false, false); V6(128, true, false); V6(256, true, false);
#undef V6
    return v;
}

const char *vname(const Variant &v, char *buf) {
    snprintf(buf, 64, "%s %s%s n%d %s", v.fp8 ? "fp8 " : "int8", v.sparse ? "sparse" : "dense ",
             v.am == AM_SS ? " SS  " : v.am == AM_RS ? " RS  " : " RSld",
             v.n, v.sw ? "SW128" : "INTER");
    return buf;
}

void prepare(kernel_fn f) {
    CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, kImage + 1024));
}

/* One instruction per warpgroup (2 warpgroups: both A tiles) against the CPU. */
bool validate(const Data &D, const Variant &v) {
    prepare(v.one);
    const int wgs = 2;
    CK(cudaMemset(D.d_out, 0xFF, wgs * 128 * (v.n / 2) * 4));
    v.one<<<1, wgs * 128, kImage + 1024>>>(D.d_img[v.sw], D.d_rows, D.d_meta, 1, D.d_out);
    CK(cudaGetLastError());
    std::vector<uint32_t> o(wgs * 128 * (v.n / 2));
    CK(cudaMemcpy(o.data(), D.d_out, o.size() * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    double worst = 0;
    for (int wg = 0; wg < wgs; wg++)
        for (int t = 0; t < 128; t++)
            for (int i = 0; i < v.n / 2; i++) {
                int w = t / 32, l = t % 32;
                int m = 16 * w + l / 4 + 8 * ((i / 2) % 2), n = 8 * (i / 4) + 2 * (l % 4) + i % 2;
                double ref, mag, got;
                reference(D, wg, m, n, v.fp8, v.sparse, &ref, &mag);
                uint32_t bits = o[(wg * 128 + t) * (v.n / 2) + i];
                if (v.fp8) {
                    float f;
                    memcpy(&f, &bits, 4);
                    got = f;
                } else {
                    got = (double)(int32_t)bits;
                }
                // FP8: the tensor core's f32 accumulation is not IEEE round-to-nearest
                // over the 32 products (it keeps ~13-14 bits below the largest
                // exponent; seen here: |err| up to 6e-4 of sum|p|); a wrong layout or
                // metadata would be off by O(sum|p|). INT8: exact.
                double err = fabs(got - ref), tol = v.fp8 ? 2e-3 * mag : 0;
                worst = fmax(worst, mag > 0 ? err / mag : err);
                if (err > tol && bad++ < 3)
                    printf("    wg %d m %d n %d: got %.6g, reference %.6g\n", wg, m, n, got, ref);
            }
    char nb[64];
    printf("  %-28s %s (%d of %d values off; worst |err|/sum|p| %.1e)\n", vname(v, nb), bad ? "FAIL" : "ok", bad,
           wgs * 64 * v.n, worst);
    return bad == 0;
}

// --- host: NVML (the kernel benchmark's sampler, src/bench/clocks.h) ----------------------------

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// --- host: timing ----------------------------------------------------------------------------

struct Result {
    bool ran;
    double tops, mhz, watts, capped, ms;
};

/* The variant on every SM (ctas per SM x wgs warpgroups) for ~target_ms, NVML sampled meanwhile. */
Result measure(const Data &D, const Variant &v, int wgs, int ctas, double target_ms, ss_clocks *nv, int sms) {
    Result R = {false, 0, 0, 0, 0, 0};
    prepare(v.fn);
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, v.fn, wgs * 128, kImage + 1024));
    if (occ < ctas)
        return R;
    const int grid = sms * ctas;
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    auto run = [&](long long iters) {
        CK(cudaEventRecord(a));
        v.fn<<<grid, wgs * 128, kImage + 1024>>>(D.d_img[v.sw], D.d_rows, D.d_meta, iters, D.d_out);
        CK(cudaGetLastError());
        CK(cudaEventRecord(b));
    };
    // calibrate: a short run, then enough iterations for target_ms
    long long iters = 2000;
    run(iters);
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    iters = std::max(2LL, (long long)(iters * target_ms / fmax(ms, 1e-3)) & ~1LL); // AM_RSLD: even
    run(iters);
    double t0 = now_s(), skip = 0.25 * target_ms * 1e-3;
    ss_clock_stats st = {};
    while (cudaEventQuery(b) == cudaErrorNotReady) {
        if (nv && now_s() - t0 > skip) {
            ss_clock_sample s;
            ss_clocks_read(nv, &s);
            ss_clock_stats_add(&st, &s);
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, nullptr);
    }
    CK(cudaEventSynchronize(b));
    CK(cudaEventElapsedTime(&ms, a, b));
    const double k_eq = v.sparse ? 64 : 32, per_iter = v.sparse ? 2 : 4;
    double ops = (double)grid * wgs * iters * per_iter * 2.0 * 64 * v.n * k_eq;
    ss_bench_clock c = ss_clock_stats_summary(&st);
    R = {true, ops / (ms * 1e-3) / 1e12, c.samples ? c.sm_mhz_mean : 0, c.power_w, c.capped > 0 ? c.capped : 0, ms};
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return R;
}

} // namespace

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "quick");
    dev_banner();
    int major = 0, minor = 0, sms = 0, *d_ok = nullptr, ok = 0;
    CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    CK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    if (major != 9 || minor != 0) {
        printf("skipped: wgmma needs an sm_90 device (this is cc%d.%d)\n", major, minor);
        return 0;
    }
    CK(cudaMalloc(&d_ok, 4));
    probe_kernel<<<1, 1>>>(d_ok);
    CK(cudaMemcpy(&ok, d_ok, 4, cudaMemcpyDeviceToHost));
    CK(cudaFree(d_ok));
    if (!ok) {
        printf("skipped: built without sm_90a (wgmma); build standalone with "
               "-gencode arch=compute_90a,code=sm_90a (see the top of dev/wgmma_peak.cu)\n");
        return 0;
    }
    Data D;
    make_data(D);
    std::vector<Variant> vs = all_variants();
    printf("# 1. one instruction per variant vs the CPU (2 warpgroups, K slice 0)\n");
    bool all_ok = true;
    for (const Variant &v : vs)
        all_ok &= validate(D, v);
    ss_context *ctx = nullptr;
    ss_clocks *nv = nullptr;
    char why[256];
    SS_CK(ss_context_create(0, &ctx));
    SS_CK(ss_clocks_open(ctx, &nv, why, sizeof why));
    printf("\n# 2. throughput, every SM busy, ~%d ms per case; clocks: %s\n", quick ? 60 : 250, why);
    printf("# TOPS dense-equivalent; %%nom: of 1979 (dense) / 3958 (sparse) at 1830 MHz; %%clk: of that peak scaled "
           "to the mean SM clock; sp/dn: sparse TOPS / dense TOPS of the same row config\n");
    printf("%-28s wg cta |    TOPS  %%nom  %%clk |  MHz     W  cap%% |   ms | sp/dn\n", "variant");
    const double target = quick ? 60 : 250;
    const int cfg[][2] = {{1, 1}, {2, 1}, {1, 2}};
    // warm-up so the first case does not run on a cold, boosted board
    {
        Variant w = vs[0];
        measure(D, w, 2, 1, quick ? 200 : 1000, nullptr, sms);
    }
    for (size_t i = 0; i + 1 < vs.size(); i += 2) { // pairs: dense, sparse of one (type, N, RS, layout)
        if (quick && !vs[i].sw)
            continue;
        for (auto &c : cfg) {
            Result r[2];
            for (int j = 0; j < 2; j++) {
                const Variant &v = vs[i + j];
                r[j] = measure(D, v, c[0], c[1], target, nv, sms);
                char nb[64];
                if (!r[j].ran) {
                    printf("%-28s %2d %3d |  (does not fit %d CTAs per SM)\n", vname(v, nb), c[0], c[1], c[1]);
                    continue;
                }
                double peak = v.sparse ? 3958 : 1979;
                printf("%-28s %2d %3d | %7.0f %5.1f %5.1f | %4.0f %5.0f %5.0f | %4.0f", vname(v, nb), c[0], c[1],
                       r[j].tops, 100 * r[j].tops / peak, r[j].mhz > 0 ? 100 * r[j].tops / (peak * r[j].mhz / 1830) : 0,
                       r[j].mhz, r[j].watts, 100 * r[j].capped, r[j].ms);
                if (j == 1 && r[0].ran)
                    printf(" | %5.2f", r[1].tops / r[0].tops);
                printf("\n");
            }
        }
    }
    ss_clocks_close(nv);
    ss_context_destroy(ctx);
    printf("\nvalidation: %s\n", all_ok ? "all variants match the CPU reference" : "SOME VARIANTS FAILED");
    return all_ok ? 0 : 1;
}
