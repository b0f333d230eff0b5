/* Tensor views: element counts and sizes of a non-owning row-major view. */
#include "slidesparse/core.h"

int64_t ss_tensor_numel(const ss_tensor *t) {
    /* ndim is clamped so a corrupt view can never read past shape[]. */
    int nd = t->ndim < 0 ? 0 : t->ndim > SS_MAX_DIMS ? SS_MAX_DIMS : t->ndim;
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= t->shape[d];
    return n;
}

size_t ss_tensor_nbytes(const ss_tensor *t) {
    int64_t n = ss_tensor_numel(t);
    return n > 0 ? (size_t)n * ss_dtype_size(t->dtype) : 0;
}

ss_tensor ss_tensor_2d(ss_dtype t, int64_t rows, int64_t cols, void *data) {
    return (ss_tensor){.dtype = t, .ndim = 2, .shape = {rows, cols}, .data = data, .on_device = 0};
}
