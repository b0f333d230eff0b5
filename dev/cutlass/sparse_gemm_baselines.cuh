/* sparse_gemm_baselines.cuh — the library baselines of dev/cutlass/sparse_gemm_sm90.cu:
 * dense cuBLASLt INT8 and cuSPARSELt INT8 2:4 (both INT32 out) and the dequant
 * kernel the library runs after them. A fragment of that harness, not a
 * standalone header: it is included inside its namespace harness after the
 * data generators, the bf16 helpers and the timing helpers (time_rotating,
 * sets_for) it uses. */

/* The library's dense path after cuBLASLt: INT32 (m, n) -> bf16 with the same
 * arithmetic, 8 columns per thread (what src/linear/kernels/dequant.cu does);
 * timed so the dense baseline is the same whole GEMM+epilogue. n % 8 == 0. */
__global__ void dequant_i32(const int32_t *__restrict__ d, const float *__restrict__ sa,
                            const float *__restrict__ sb, const uint16_t *__restrict__ bias,
                            int64_t m, int64_t n, uint16_t *__restrict__ y) {
    int64_t nv = n >> 3;
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= m * nv)
        return;
    int64_t r = i / nv, c0 = (i - r * nv) * 8;
    int4 a = __ldcs((const int4 *)(d + r * n + c0)), b = __ldcs((const int4 *)(d + r * n + c0 + 4));
    int v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    uint32_t o[4];
    float s = sa[r];
#pragma unroll
    for (int j = 0; j < 8; j += 2) {
        float t0 = __fadd_rn(__fmul_rn(__fmul_rn(__int2float_rn(v[j]), s), sb[c0 + j]),
                             bf16_bits_to_f32(bias[c0 + j]));
        float t1 = __fadd_rn(__fmul_rn(__fmul_rn(__int2float_rn(v[j + 1]), s), sb[c0 + j + 1]),
                             bf16_bits_to_f32(bias[c0 + j + 1]));
        o[j / 2] = f32_to_bf16_bits(t0) | ((uint32_t)f32_to_bf16_bits(t1) << 16);
    }
    __stcs((uint4 *)(y + r * n + c0), make_uint4(o[0], o[1], o[2], o[3]));
}

/* The INT32 GEMM output and what the dequant reads / writes, per rotating set
 * (both baselines time the same dequant after their GEMM). */
struct EpiSet {
    int32_t *d;
    float *sa, *sb;
    uint16_t *bias, *y;
};

static void epi_alloc(EpiSet &e, int m, int n, uint32_t seed) {
    CK(cudaMalloc(&e.d, (size_t)m * n * 4));
    CK(cudaMalloc(&e.sa, (size_t)m * 4));
    CK(cudaMalloc(&e.sb, (size_t)n * 4));
    CK(cudaMalloc(&e.bias, (size_t)n * 2));
    CK(cudaMalloc(&e.y, (size_t)m * n * 2));
    fill_f32<<<kGrid, kBlock>>>(e.sa, m, seed, 1e-3f, 2e-2f);
    fill_f32<<<kGrid, kBlock>>>(e.sb, n, seed + 100, 1e-3f, 2e-2f);
    fill_bias<<<kGrid, kBlock>>>(e.bias, n, seed + 200);
}

static void epi_free(EpiSet &e) {
    cudaFree(e.d);
    cudaFree(e.sa);
    cudaFree(e.sb);
    cudaFree(e.bias);
    cudaFree(e.y);
}

/* dequant_i32 over the sets' GEMM outputs, rotating like the GEMM's timing. */
template <class Set>
static double time_dequant(std::vector<Set> &sets, int m, int n) {
    int64_t nv = (int64_t)m * (n / 8);
    double dq = time_rotating((int)sets.size(), 3, 15, [&](int i) {
        const EpiSet &e = sets[i].e;
        dequant_i32<<<(unsigned)((nv + 255) / 256), 256>>>(e.d, e.sa, e.sb, e.bias, m, n, e.y);
    });
    CK(cudaGetLastError());
    return dq;
}

/* ---- dense cuBLASLt INT8 (TN, IMMA, INT32 out): D (n x m col-major) = W q^T ---- */
struct Dense {
    cublasLtHandle_t lt;
    void *ws;
    size_t ws_bytes = 64ull << 20;
};

struct DenseResult {
    double gemm_us, dequant_us;
};

static DenseResult time_dense(Dense &dn, int m, int n, int k) {
    struct DSet {
        int8_t *w, *q;
        EpiSet e;
    };
    size_t set_bytes = (size_t)n * k + (size_t)m * k + (size_t)m * n * 6;
    int ns = sets_for(set_bytes);
    std::vector<DSet> sets(ns);
    for (int i = 0; i < ns; ++i) {
        DSet &s = sets[i];
        CK(cudaMalloc(&s.w, (size_t)n * k));
        CK(cudaMalloc(&s.q, (size_t)m * k));
        fill_i8<<<kGrid, kBlock>>>(s.w, (int64_t)n * k, 100 + i);
        fill_i8<<<kGrid, kBlock>>>(s.q, (int64_t)m * k, 200 + i);
        epi_alloc(s.e, m, n, 300 + i);
    }
    CK(cudaDeviceSynchronize());
    cublasLtMatmulDesc_t op;
    CKLT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    CKLT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA));
    CKLT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB));
    cublasLtMatrixLayout_t la, lb, ld;
    CKLT(cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, k, n, k));
    CKLT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, k, m, k));
    CKLT(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32I, n, m, n));
    cublasLtMatmulPreference_t pref;
    CKLT(cublasLtMatmulPreferenceCreate(&pref));
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                              &dn.ws_bytes, sizeof dn.ws_bytes));
    cublasLtMatmulHeuristicResult_t heur[8];
    int nh = 0;
    CKLT(cublasLtMatmulAlgoGetHeuristic(dn.lt, op, la, lb, ld, ld, pref, 8, heur, &nh));
    int32_t one = 1, zero = 0;
    double best = 1e30;
    for (int h = 0; h < nh; ++h) {
        auto run = [&](int i) {
            cublasLtMatmul(dn.lt, op, &one, sets[i].w, la, sets[i].q, lb, &zero, sets[i].e.d, ld,
                           sets[i].e.d, ld, &heur[h].algo, dn.ws, dn.ws_bytes, 0);
        };
        double t = time_rotating(ns, 3, 15, run);
        if (cudaGetLastError() == cudaSuccess)
            best = std::min(best, t);
    }
    double dq = time_dequant(sets, m, n);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(op);
    for (auto &s : sets) {
        cudaFree(s.w);
        cudaFree(s.q);
        epi_free(s.e);
    }
    return {best, dq};
}

#ifdef SS_WITH_CUSPARSELT
#define CKSP(x) CK_STATUS(cusparseStatus_t, CUSPARSE_STATUS_SUCCESS, "cusparse", x)

/* cuSPARSELt INT8 2:4 the way src/linear/cusparselt.c calls it: W' (N, K')
 * row-major = structured column-major K' x N, op T; q = dense K' x M col-major;
 * D = N x M col-major INT32; then the same dequant kernel. Algorithm and split-K
 * picked by cusparseLtMatmulSearch on the first set. */
static DenseResult time_cusparselt(cusparseLtHandle_t *h, int m, int n, int kp) {
    cusparseLtMatDescriptor_t ma, mb, mc;
    CKSP(cusparseLtStructuredDescriptorInit(h, &ma, kp, n, kp, 16, CUDA_R_8I, CUSPARSE_ORDER_COL,
                                            CUSPARSELT_SPARSITY_50_PERCENT));
    CKSP(cusparseLtDenseDescriptorInit(h, &mb, kp, m, kp, 16, CUDA_R_8I, CUSPARSE_ORDER_COL));
    CKSP(cusparseLtDenseDescriptorInit(h, &mc, n, m, n, 16, CUDA_R_32I, CUSPARSE_ORDER_COL));
    cusparseLtMatmulDescriptor_t mm;
    CKSP(cusparseLtMatmulDescriptorInit(h, &mm, CUSPARSE_OPERATION_TRANSPOSE,
                                        CUSPARSE_OPERATION_NON_TRANSPOSE, &ma, &mb, &mc, &mc,
                                        CUSPARSE_COMPUTE_32I));
    cusparseLtMatmulAlgSelection_t sel;
    CKSP(cusparseLtMatmulAlgSelectionInit(h, &sel, &mm, CUSPARSELT_MATMUL_ALG_DEFAULT));
    cusparseLtMatmulPlan_t plan;
    CKSP(cusparseLtMatmulPlanInit(h, &plan, &mm, &sel));
    size_t csize = 0, cbsize = 0;
    CKSP(cusparseLtSpMMACompressedSize2(h, &ma, &csize, &cbsize));
    struct CSet {
        void *wc;
        int8_t *q;
        EpiSet e;
    };
    size_t set_bytes = csize + (size_t)m * kp + (size_t)m * n * 6;
    int ns = sets_for(set_bytes);
    std::vector<CSet> sets(ns);
    int8_t *wtmp;
    void *cbuf = nullptr;
    CK(cudaMalloc(&wtmp, (size_t)n * kp));
    if (cbsize)
        CK(cudaMalloc(&cbuf, cbsize));
    for (int i = 0; i < ns; ++i) {
        CSet &s = sets[i];
        CK(cudaMalloc(&s.wc, csize + (1 << 20)));
        CK(cudaMalloc(&s.q, (size_t)m * kp));
        fill_w24<<<kGrid, kBlock>>>(wtmp, n, kp, 3000 + i);
        fill_i8<<<kGrid, kBlock>>>(s.q, (int64_t)m * kp, 3100 + i);
        epi_alloc(s.e, m, n, 3200 + i);
        CKSP(cusparseLtSpMMACompress2(h, &ma, 1, CUSPARSE_OPERATION_TRANSPOSE, wtmp, s.wc, cbuf,
                                      0));
    }
    CK(cudaDeviceSynchronize());
    cudaFree(wtmp);
    cudaFree(cbuf);
    float one = 1.f, zero = 0.f;
    cudaStream_t st0 = 0;
    size_t ws_bytes = 0;
    void *ws = nullptr;
    CKSP(cusparseLtMatmulGetWorkspace(h, &plan, &ws_bytes));
    /* the search may pick split-K, whose workspace is larger: reserve generously */
    size_t ws_cap = std::max(ws_bytes, (size_t)256 << 20);
    CK(cudaMalloc(&ws, ws_cap));
    CKSP(cusparseLtMatmulSearch(h, &plan, &one, sets[0].wc, sets[0].q, &zero, sets[0].e.d,
                                sets[0].e.d, ws, &st0, 1));
    CKSP(cusparseLtMatmulGetWorkspace(h, &plan, &ws_bytes));
    if (ws_bytes > ws_cap) {
        fprintf(stderr, "cuSPARSELt workspace %zu > %zu\n", ws_bytes, ws_cap);
        exit(2);
    }
    double t = time_rotating(ns, 3, 20, [&](int i) {
        cusparseLtMatmul(h, &plan, &one, sets[i].wc, sets[i].q, &zero, sets[i].e.d, sets[i].e.d, ws,
                         &st0, 1);
    });
    double dq = time_dequant(sets, m, n);
    cudaFree(ws);
    for (auto &s : sets) {
        cudaFree(s.wc);
        cudaFree(s.q);
        epi_free(s.e);
    }
    cusparseLtMatmulPlanDestroy(&plan);
    cusparseLtMatmulAlgSelectionDestroy(&sel);
    cusparseLtMatDescriptorDestroy(&ma);
    cusparseLtMatDescriptorDestroy(&mb);
    cusparseLtMatDescriptorDestroy(&mc);
    return {t, dq};
}
#endif
