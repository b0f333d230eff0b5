/* The CUDA side of ss_context (CUDA builds): the device's properties, the
 * cuBLASLt and cuSPARSELt handles with their run-time versions, and the
 * device buffers every GPU linear shares (GEMM workspace, forward scratch).
 * All linears of a context run on its one stream, so sharing them is safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "linear/cuda_state.h"

int ss_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* "no driver / no device" is an answer, not an error */
        return 0;
    }
    return n;
}

ss_status ss_cuda_fail(cudaError_t e, const char *name, const char *what) {
    (void)cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
        return ss_fail(SS_ENOMEM, "tensor '%s': %s: out of device memory", name, what);
    return ss_fail(SS_ECUDA, "tensor '%s': %s: %s (%s)", name, what, cudaGetErrorName(e),
                   cudaGetErrorString(e));
}

ss_status ss_cuda_alloc(void **p, size_t size, const char *name, const char *what) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, size ? size : 1);
    if (e != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        if (e == cudaErrorMemoryAllocation)
            return ss_fail(SS_ENOMEM,
                           "tensor '%s': %s: expected %zu bytes of device memory, found %zu free "
                           "of %zu", name, what, size, free_b, total_b);
        return ss_cuda_fail(e, name, what);
    }
    return SS_OK;
}

ss_status ss_cuda_buf_reserve(ss_cuda_buf *b, size_t size, const char *name, const char *what) {
    if (size <= b->size && b->p)
        return SS_OK;
    ss_cuda_buf_free(b);
    /* grow by half again so that a slowly rising m does not reallocate each step */
    size_t want = size + size / 2;
    ss_status s = ss_cuda_alloc(&b->p, want, name, what);
    if (s != SS_OK) {
        s = ss_cuda_alloc(&b->p, size, name, what);
        if (s != SS_OK)
            return s;
        want = size;
    }
    b->size = want;
    return SS_OK;
}

void ss_cuda_buf_free(ss_cuda_buf *b) {
    if (b->p)
        cudaFree(b->p);
    b->p = NULL;
    b->size = 0;
}

const char *ss_cuda_dtype_reason(const ss_cuda_state *st, ss_dtype wdtype) {
    int cc = st->cc_major * 10 + st->cc_minor;
    if (cc < 80)
        return "needs compute capability >= 8.0";
    if (wdtype == SS_DTYPE_F8_E4M3 && cc < 89)
        return "FP8 needs compute capability >= 8.9";
    return NULL;
}

ss_status ss_cuda_context_init(ss_context *ctx) {
    /* ss_context_create checked the ordinal against the visible devices */
    ss_cuda_state *st = calloc(1, sizeof *st);
    if (!st)
        return ss_fail(SS_ENOMEM, "context: out of memory");
    st->device = ctx->device;
    cudaError_t e = cudaSetDevice(ctx->device);
    if (e != cudaSuccess)
        goto cuda_fail;
    struct cudaDeviceProp pr;
    e = cudaGetDeviceProperties(&pr, ctx->device);
    if (e != cudaSuccess)
        goto cuda_fail;
    snprintf(st->gpu_name, sizeof st->gpu_name, "%s", pr.name);
    st->cc_major = pr.major;
    st->cc_minor = pr.minor;
    st->sms = pr.multiProcessorCount;
    st->total_mem = pr.totalGlobalMem;
    if (cublasLtCreate(&st->lt) != CUBLAS_STATUS_SUCCESS) {
        free(st);
        return ss_fail(SS_ECUDA, "context: cublasLtCreate failed on device %d", ctx->device);
    }
    st->lt_version = cublasLtGetVersion();
#ifdef SS_HAVE_CUSPARSELT
    /* cuSPARSELt refuses GPUs it has no kernels for; the dense path still works,
     * and supports() says why the sparse one does not. */
    st->sp_ok = cusparseLtInit(&st->sp) == CUSPARSE_STATUS_SUCCESS;
    if (st->sp_ok && cusparseLtGetVersion(&st->sp, &st->sp_version) != CUSPARSE_STATUS_SUCCESS)
        st->sp_version = 0;
#endif
    ctx->gpu = st;
    return SS_OK;

cuda_fail:
    free(st);
    (void)cudaGetLastError();
    return ss_fail(SS_ECUDA, "context: device %d: %s", ctx->device, cudaGetErrorString(e));
}

void ss_cuda_context_fini(ss_context *ctx) {
    ss_cuda_state *st = ss_cuda(ctx);
    if (!st)
        return;
    /* work queued on the stream may still use the buffers */
    if (ctx->stream)
        cudaStreamSynchronize(ss_cuda_stream(ctx));
    else
        cudaDeviceSynchronize();
    ss_cuda_buf_free(&st->workspace);
    ss_cuda_buf_free(&st->scratch_q);
    ss_cuda_buf_free(&st->scratch_sa);
    ss_cuda_buf_free(&st->scratch_d);
#ifdef SS_HAVE_CUSPARSELT
    if (st->sp_ok)
        cusparseLtDestroy(&st->sp);
#endif
    cublasLtDestroy(st->lt);
    free(st);
    ctx->gpu = NULL;
}

ss_status ss_cuda_context_describe(const ss_context *ctx, char *buf, size_t n) {
    const ss_cuda_state *st = ss_cuda(ctx);
    int sp = 0, sp_ok = 0;
#ifdef SS_HAVE_CUSPARSELT
    sp = st->sp_version;
    sp_ok = st->sp_ok;
#endif
    char spv[64];
    if (sp_ok)
        snprintf(spv, sizeof spv, "%d.%d.%d", sp / 1000000, sp / 100 % 10000, sp % 100);
    else
        snprintf(spv, sizeof spv, "%s",
#ifdef SS_HAVE_CUSPARSELT
                 "unavailable (cusparseLtInit failed)"
#else
                 "not built"
#endif
        );
    /* 0.8.0 shipped performance regressions on H100 and L4, fixed in 0.8.1 */
    const char *warn = sp_ok && sp < 801 ? "; warning: cuSPARSELt < 0.8.1 has known Hopper regressions"
                                         : "";
    int w = snprintf(buf, n, "GPU %d: %s, cc %d.%d, %d SMs, %.1f GiB; cuBLASLt %zu; cuSPARSELt %s%s",
                     st->device, st->gpu_name, st->cc_major, st->cc_minor, st->sms,
                     (double)st->total_mem / (1024.0 * 1024.0 * 1024.0), st->lt_version, spv, warn);
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "context describe: buffer of %zu bytes too small", n);
    return SS_OK;
}
