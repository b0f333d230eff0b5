/* The tuner's candidate interface (slidesparse/linear.h) over the optional
 * backend ops: a backend without them has one algorithm and nothing to pin. */
#include "core/error.h"
#include "linear/backend.h"

int ss_linear_algo_count(ss_linear *lin, int64_t m) {
    if (!lin || !lin->ops->algo_count || m <= 0)
        return 0;
    return lin->ops->algo_count(lin, ss_linear_m_pad(m));
}

ss_status ss_linear_algo_get(ss_linear *lin, int64_t m, int i, ss_algo *out) {
    if (!lin || !out)
        return ss_fail(SS_EINVAL, "algo get: linear or out pointer is NULL");
    int n = ss_linear_algo_count(lin, m);
    if (i < 0 || i >= n)
        return ss_fail(SS_EINVAL, "tensor '%s': algorithm %d requested, the backend offers %d",
                       lin->name, i, n);
    return lin->ops->algo_get(lin, ss_linear_m_pad(m), i, out);
}

ss_status ss_linear_algo_set(ss_linear *lin, int64_t m, const ss_algo *a) {
    if (!lin)
        return ss_fail(SS_EINVAL, "algo set: linear is NULL");
    if (!lin->ops->algo_set)
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': backend %s has one algorithm, nothing to pin",
                       lin->name, lin->ops->name);
    if (m <= 0)
        return ss_fail(SS_EINVAL, "tensor '%s': algo set: expected m > 0, found %lld", lin->name,
                       (long long)m);
    if (a && a->backend != SS_BACKEND_CUBLASLT && a->backend != SS_BACKEND_CUSPARSELT &&
        a->backend != SS_BACKEND_SM90SP && a->backend != SS_BACKEND_SM90DENSE)
        return ss_fail(SS_EINVAL, "tensor '%s': algorithm for backend %s given to %s", lin->name,
                       ss_backend_name(a->backend), lin->ops->name);
    return lin->ops->algo_set(lin, ss_linear_m_pad(m), a);
}

ss_status ss_linear_algo_workspace(ss_linear *lin, int64_t m, const ss_algo *a, uint64_t *bytes) {
    if (!lin || !a || !bytes)
        return ss_fail(SS_EINVAL, "algo workspace: linear, algorithm or out pointer is NULL");
    if (m <= 0)
        return ss_fail(SS_EINVAL, "tensor '%s': algo workspace: expected m > 0, found %lld",
                       lin->name, (long long)m);
    if (!lin->ops->algo_workspace) {
        *bytes = a->workspace;
        return SS_OK;
    }
    return lin->ops->algo_workspace(lin, ss_linear_m_pad(m), a, bytes);
}
