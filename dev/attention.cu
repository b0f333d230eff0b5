/* dev/attention.cu — the engine's paged GQA attention kernel
 * (src/engine/cuda/attention.cu) in isolation: a CPU reference (double
 * softmax), validation on small and BitNet-2B-shaped batches (prefill
 * chunks, decode, mixed), then timings.
 *
 *   dev_attention [quick]
 *
 * Validation: every output row (or a strided sample for the big cases) vs the
 * reference; normalized max error (max|gpu - ref| / max|ref|) must stay below
 * 1e-2 (the output is BF16: 2^-9 relative per element, plus float
 * accumulation). The first mismatches are printed.
 * Timing (median of batches, cudaEvents): prefill of S sequences x P tokens
 * (BitNet-2B: 20 heads, 5 kv heads, hd 128) in TFLOPS (4 * hd flops per
 * (query, key, head) pair) and tokens/s of the attention alone; decode of B
 * sequences at context C in GB/s of KV read (the bound for decode).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "dev_common.h"
#include "engine/cuda/kernels.h"

// --- host helpers ---------------------------------------------------------------------------

static float bf2f(uint16_t u) {
    uint32_t v = (uint32_t)u << 16;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

struct Seq {
    int start, n; /* new tokens at positions start..start+n-1; start keys cached before */
};

/* One batch on the device, laid out as the engine lays it out. */
struct Batch {
    int nh, nkv, hd, max_blocks, n_blocks;
    int64_t t, n_tiles;
    std::vector<Seq> seqs;
    std::vector<uint16_t> qkv, k, v; // (t, (nh+2nkv) hd); pool (n_blocks, 16, nkv, hd)
    std::vector<ss_tok_info> tok;
    std::vector<int32_t> tables;     // (n_seqs, max_blocks)
    std::vector<ss_attn_tile> tiles;
    uint16_t *d_qkv = nullptr, *d_k = nullptr, *d_v = nullptr, *d_out = nullptr;
    ss_tok_info *d_tok = nullptr;
    int32_t *d_tables = nullptr;
    ss_attn_tile *d_tiles = nullptr;
};

/* The engine's tile split (src/engine/cuda/engine_gpu.c fill_meta). */
static void make_tiles(Batch &b) {
    int group = b.nh / b.nkv, hp = std::min(group, SS_ATTN_ITEMS), rq = SS_ATTN_ITEMS / hp;
    int64_t row0 = 0;
    for (size_t i = 0; i < b.seqs.size(); i++) {
        int n = b.seqs[i].n;
        for (int kvh = 0; kvh < b.nkv; kvh++)
            for (int hs = 0; hs < group; hs += hp)
                for (int r = 0; r < n; r += rq)
                    b.tiles.push_back({(int32_t)i, (int32_t)(row0 + r), std::min(rq, n - r),
                                       kvh * group + hs, std::min(hp, group - hs)});
        row0 += n;
    }
    b.n_tiles = (int64_t)b.tiles.size();
}

static void build(Batch &b, int nh, int nkv, int hd, const std::vector<Seq> &seqs) {
    b.nh = nh, b.nkv = nkv, b.hd = hd, b.seqs = seqs;
    b.t = 0;
    b.max_blocks = 0;
    int total_blocks = 0;
    for (const Seq &s : seqs) {
        b.t += s.n;
        int nb = (s.start + s.n + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        b.max_blocks = std::max(b.max_blocks, nb);
        total_blocks += nb;
    }
    b.n_blocks = total_blocks + 3; /* a few unused blocks */
    /* Blocks handed out in a shuffled order: tables are not the identity. */
    std::vector<int32_t> ids(b.n_blocks);
    for (int i = 0; i < b.n_blocks; i++)
        ids[i] = i;
    for (int i = b.n_blocks - 1; i > 0; i--) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        std::swap(ids[i], ids[rng_state % (uint64_t)(i + 1)]);
    }
    b.tables.assign(seqs.size() * (size_t)b.max_blocks, 0);
    int next = 0;
    for (size_t i = 0; i < seqs.size(); i++) {
        int nb = (seqs[i].start + seqs[i].n + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        for (int j = 0; j < nb; j++)
            b.tables[i * b.max_blocks + j] = ids[next++];
    }
    size_t row = (size_t)(nh + 2 * nkv) * hd, pool = (size_t)b.n_blocks * SS_KV_BLOCK * nkv * hd;
    b.qkv.resize((size_t)b.t * row);
    for (auto &x : b.qkv)
        x = f2bf(2.0f * frand());
    b.k.resize(pool);
    b.v.resize(pool);
    for (auto &x : b.k)
        x = f2bf(2.0f * frand());
    for (auto &x : b.v)
        x = f2bf(frand());
    b.tok.clear();
    for (size_t i = 0; i < seqs.size(); i++)
        for (int j = 0; j < seqs[i].n; j++)
            b.tok.push_back({(int32_t)i, seqs[i].start + j});
    make_tiles(b);
    CK(cudaMalloc(&b.d_qkv, b.qkv.size() * 2));
    CK(cudaMalloc(&b.d_k, pool * 2));
    CK(cudaMalloc(&b.d_v, pool * 2));
    CK(cudaMalloc(&b.d_out, (size_t)b.t * nh * hd * 2));
    CK(cudaMalloc(&b.d_tok, b.tok.size() * sizeof(ss_tok_info)));
    CK(cudaMalloc(&b.d_tables, std::max<size_t>(1, b.tables.size()) * 4));
    CK(cudaMalloc(&b.d_tiles, b.tiles.size() * sizeof(ss_attn_tile)));
    CK(cudaMemcpy(b.d_qkv, b.qkv.data(), b.qkv.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_k, b.k.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_v, b.v.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tok, b.tok.data(), b.tok.size() * sizeof(ss_tok_info), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tables, b.tables.data(), b.tables.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tiles, b.tiles.data(), b.tiles.size() * sizeof(ss_attn_tile), cudaMemcpyHostToDevice));
    CK(cudaMemset(b.d_out, 0xff, (size_t)b.t * nh * hd * 2)); /* NaN: unwritten rows show */
}

static void release(Batch &b) {
    cudaFree(b.d_qkv), cudaFree(b.d_k), cudaFree(b.d_v), cudaFree(b.d_out);
    cudaFree(b.d_tok), cudaFree(b.d_tables), cudaFree(b.d_tiles);
}

static cudaError_t run(const Batch &b) {
    return ss_attention_cuda(b.d_qkv, b.d_tok, b.d_tiles, b.n_tiles, b.d_tables, b.max_blocks, b.d_k,
                             b.d_v, b.nh, b.nkv, b.hd, b.d_out, 0);
}

/* Reference for one (row, head): double softmax over positions 0..pos. */
static void ref_row(const Batch &b, int64_t r, int h, std::vector<double> &o) {
    int hd = b.hd, nkv = b.nkv, kvh = h / (b.nh / nkv);
    const ss_tok_info tk = b.tok[r];
    const uint16_t *q = &b.qkv[(size_t)r * (b.nh + 2 * nkv) * hd + (size_t)h * hd];
    const int32_t *tab = &b.tables[(size_t)tk.seq * b.max_blocks];
    std::vector<double> s(tk.pos + 1);
    double mx = -1e300;
    for (int j = 0; j <= tk.pos; j++) {
        size_t off = ((size_t)tab[j / SS_KV_BLOCK] * SS_KV_BLOCK + j % SS_KV_BLOCK) * nkv * hd + (size_t)kvh * hd;
        double d = 0;
        for (int c = 0; c < hd; c++)
            d += (double)bf2f(q[c]) * bf2f(b.k[off + c]);
        s[j] = d / sqrt((double)hd);
        mx = std::max(mx, s[j]);
    }
    o.assign(hd, 0.0);
    double sum = 0;
    for (int j = 0; j <= tk.pos; j++) {
        size_t off = ((size_t)tab[j / SS_KV_BLOCK] * SS_KV_BLOCK + j % SS_KV_BLOCK) * nkv * hd + (size_t)kvh * hd;
        double p = exp(s[j] - mx);
        sum += p;
        for (int c = 0; c < hd; c++)
            o[c] += p * bf2f(b.v[off + c]);
    }
    for (int c = 0; c < hd; c++)
        o[c] /= sum;
}

/* Runs once and compares rows r % stride == 0 (and the last row); 0 = pass. */
static int validate(const char *name, Batch &b, int64_t stride) {
    CK(run(b));
    CK(cudaDeviceSynchronize());
    std::vector<uint16_t> out((size_t)b.t * b.nh * b.hd);
    CK(cudaMemcpy(out.data(), b.d_out, out.size() * 2, cudaMemcpyDeviceToHost));
    double md = 0, mr = 0;
    int shown = 0;
    int64_t rows = 0;
    std::vector<double> o;
    for (int64_t r = 0; r < b.t; r++) {
        if (r % stride != 0 && r != b.t - 1)
            continue;
        rows++;
        for (int h = 0; h < b.nh; h++) {
            ref_row(b, r, h, o);
            for (int c = 0; c < b.hd; c++) {
                double g = bf2f(out[((size_t)r * b.nh + h) * b.hd + c]);
                double d = fabs(g - o[c]);
                if (!(d <= 2e-2 * std::max(1.0, fabs(o[c]))) && shown < 5) {
                    printf("  mismatch %s row %lld head %d col %d: gpu %.6f ref %.6f\n", name, (long long)r, h, c, g, o[c]);
                    shown++;
                }
                md = (d > md || d != d) ? d : md;
                mr = std::max(mr, fabs(o[c]));
            }
        }
    }
    double rel = md / std::max(mr, 1e-30);
    int ok = rel <= 1e-2;
    printf("%s %-44s rows %6lld  max diff %.3e (normalized %.3e, tol 1e-02)\n", ok ? "OK " : "BAD", name,
           (long long)rows, md, rel);
    return ok ? 0 : 1;
}

// --- main ------------------------------------------------------------------------------------

static std::vector<Seq> uniform(int n_seqs, int start, int n) { return std::vector<Seq>(n_seqs, Seq{start, n}); }

int main(int argc, char **argv) {
    const bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    dev_banner();
    int fails = 0;
    struct Case {
        const char *name;
        int nh, nkv, hd;
        std::vector<Seq> seqs;
        int64_t stride;
    };
    std::vector<Case> cases = {
        {"tiny bitnet (6/2 heads, hd 16) prefill", 6, 2, 16, {{0, 1}, {0, 17}, {0, 40}}, 1},
        {"tiny qwen2 (5/1, hd 16) mixed", 5, 1, 16, {{20, 1}, {0, 3}, {5, 4}, {33, 1}}, 1},
        {"hd 18 (scalar loads), group 3", 6, 2, 18, {{0, 35}, {40, 1}}, 1},
        {"hd 64, group 1", 4, 4, 64, {{0, 70}, {100, 1}}, 1},
        {"group 20 (> 16 items: head split)", 20, 1, 32, {{0, 9}, {50, 1}}, 1},
        {"bitnet-2b (20/5, hd 128) prefill 2x300", 20, 5, 128, uniform(2, 0, 300), 7},
        {"bitnet-2b decode 64 seqs at 271", 20, 5, 128, uniform(64, 271, 1), 1},
        {"bitnet-2b chunked prefill 100 after 200", 20, 5, 128, uniform(3, 200, 100), 5},
        {"hd 256 (dynamic smem > 48 KB)", 8, 2, 256, {{0, 50}, {64, 1}}, 3},
    };
    for (Case &c : cases) {
        Batch b;
        build(b, c.nh, c.nkv, c.hd, c.seqs);
        fails += validate(c.name, b, c.stride);
        release(b);
    }
    if (fails) {
        printf("attention: %d case(s) FAILED validation\n", fails);
        return 1;
    }
    /* Timings: BitNet-2B shapes. */
    struct Timing {
        const char *name;
        int n_seqs, start, n;
    };
    std::vector<Timing> timings = {
        {"prefill 16 x 1024 (M = 16384)", 16, 0, 1024},
        {"prefill 4 x 1024 (M = 4096)", 4, 0, 1024},
        {"decode 64 seqs at 272", 64, 271, 1},
        {"decode 64 seqs at 1024", 64, 1023, 1},
        {"decode 256 seqs at 272", 256, 271, 1},
    };
    if (quick)
        timings.resize(3);
    printf("# timings (BitNet-2B: 20 heads, 5 kv heads, hd 128)\n");
    for (const Timing &tm : timings) {
        Batch b;
        build(b, 20, 5, 128, uniform(tm.n_seqs, tm.start, tm.n));
        double us = time_us([&](int) { run(b); }, 1, 5, 7);
        double pairs = 0; /* (query, key) pairs per head */
        for (const Seq &s : b.seqs)
            pairs += (double)s.n * s.start + (double)s.n * (s.n + 1) / 2.0;
        double flops = 4.0 * pairs * b.hd * b.nh;
        double kv_bytes = 0; /* distinct K and V rows read */
        for (const Seq &s : b.seqs)
            kv_bytes += 2.0 * (s.start + s.n) * b.nkv * b.hd * 2;
        printf("%-34s %9.1f us  %7.2f TFLOPS  %8.1f GB/s KV  %10.0f tokens/s\n", tm.name, us,
               flops / us / 1e6, kv_bytes / us / 1e3, (double)b.t / us * 1e6);
        release(b);
    }
    CK(cudaGetLastError());
    return 0;
}
