/* sparse_gemm_reference.cuh — the CPU references of dev/cutlass/sparse_gemm_sm90.cu
 * (INT8 bit-exact, FP8 in double). A fragment of that harness, not a standalone
 * header: it is included inside its namespace harness after the bf16 helpers it
 * uses (bf16_bits_to_f32, f32_to_bf16_bits). */

/* ---- CPU references ---- */

/* What both references share: output columns spread over threads; each
 * column's nonzero weights (decoded by wv, accumulated as Acc) dotted with
 * every token row (qrow(r): that row's K' values), then out(r, c, acc). */
template <class Acc, class WV, class QRow, class Out>
static void cpu_ref_cols(const std::vector<int8_t> &w, int m, int n, int kp, WV wv, QRow qrow, Out out) {
    unsigned nt = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> th;
    for (unsigned t = 0; t < nt; ++t)
        th.emplace_back([&, t]() {
            std::vector<int> nzi;
            std::vector<Acc> nzv;
            for (int c = (int)t; c < n; c += (int)nt) {
                nzi.clear();
                nzv.clear();
                for (int j = 0; j < kp; ++j)
                    if (w[(size_t)c * kp + j]) {
                        nzi.push_back(j);
                        nzv.push_back(wv(w[(size_t)c * kp + j]));
                    }
                for (int r = 0; r < m; ++r) {
                    const auto *qr = qrow(r);
                    Acc acc = 0;
                    for (size_t z = 0; z < nzi.size(); ++z)
                        acc += nzv[z] * (Acc)qr[nzi[z]];
                    out(r, c, acc);
                }
            }
        });
    for (auto &x : th)
        x.join();
}

/* INT8: int64 accumulate, then SPEC §4 in float (bit-exact target). */
static void cpu_ref_i8(const std::vector<int8_t> &w, const std::vector<int8_t> &q,
                       const std::vector<float> &sa, const std::vector<float> &sb,
                       const std::vector<uint16_t> &bias, int m, int n, int kp,
                       std::vector<uint16_t> &y) {
    y.assign((size_t)m * n, 0);
    cpu_ref_cols<int64_t>(
        w, m, n, kp, [](int8_t b) { return (int64_t)b; }, [&](int r) { return &q[(size_t)r * kp]; },
        [&](int r, int c, int64_t acc) {
            volatile float v = (float)acc; /* volatile: no contraction */
            v = v * sa[r];
            v = v * sb[c];
            v = v + bf16_bits_to_f32(bias[c]);
            y[(size_t)r * n + c] = f32_to_bf16_bits(v);
        });
}

/* FP8: e4m3 decoded exactly, accumulated in double, the epilogue in double;
 * the GPU accumulates in F32 (fast accumulation), so FP8 is checked within
 * the tests' 1e-2 normalized error, not bit for bit. */
static double e4m3_to_d(uint8_t b) {
    int e = (b >> 3) & 15, mt = b & 7;
    double v = e ? ldexp(1.0 + mt / 8.0, e - 7) : ldexp(mt / 8.0, -6);
    return (b & 0x80) ? -v : v;
}
static void cpu_ref_f8(const std::vector<int8_t> &w, const std::vector<int8_t> &q,
                       const std::vector<float> &sa, const std::vector<float> &sb,
                       const std::vector<uint16_t> &bias, int m, int n, int kp,
                       std::vector<double> &y) {
    y.assign((size_t)m * n, 0.0);
    std::vector<double> qd(q.size());
    for (size_t i = 0; i < q.size(); ++i)
        qd[i] = e4m3_to_d((uint8_t)q[i]);
    cpu_ref_cols<double>(
        w, m, n, kp, [](int8_t b) { return e4m3_to_d((uint8_t)b); },
        [&](int r) { return &qd[(size_t)r * kp]; },
        [&](int r, int c, double acc) { y[(size_t)r * n + c] = acc * sa[r] * sb[c] + bf16_bits_to_f32(bias[c]); });
}
