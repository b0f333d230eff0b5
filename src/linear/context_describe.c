/* ss_context_describe: one line naming the device and library versions, for
 * benchmark banners and CSV rows (STYLE: every row carries what reproduces it). */
#include <stdio.h>

#include "core/error.h"
#include "linear/backend.h"

#ifdef SS_HAVE_CUDA
ss_status ss_cuda_context_describe(const ss_context *ctx, char *buf, size_t n); /* cuda_context.c */
#endif

ss_status ss_context_describe(const ss_context *ctx, char *buf, size_t n) {
    if (!ctx || !buf || n == 0)
        return ss_fail(SS_EINVAL, "context describe: expected a context and a buffer, found NULL");
#ifdef SS_HAVE_CUDA
    if (ctx->device >= 0 && ctx->gpu)
        return ss_cuda_context_describe(ctx, buf, n);
#endif
    int w = snprintf(buf, n, "CPU (no device)");
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "context describe: buffer of %zu bytes too small", n);
    return SS_OK;
}
