/* libFuzzer target: tuning-table parsing on arbitrary bytes. An accepted table
 * must answer lookups (GEMM and kernel-launch entries), serialize, and parse
 * back to the same entry counts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slidesparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_tune_table *t = NULL, *u = NULL;
    if (ss_tune_table_parse((const char *)data, size, "fuzz.json", &t) != SS_OK)
        return 0;
    for (size_t i = 0; i < ss_tune_table_count(t); i++) {
        const ss_tune_entry *e = ss_tune_table_entry(t, i);
        if (e->n_top < 1 || e->n_top > SS_TUNE_TOP || e->m <= 0 ||
            !ss_tune_table_lookup(t, e->backend, e->in, e->out, e->n, e->k, e->m + 1))
            __builtin_trap();
    }
    for (size_t i = 0; i < ss_tune_table_kernel_count(t); i++) {
        const ss_tune_kernel_entry *e = ss_tune_table_kernel_entry(t, i);
        if (e->n_top < 1 || e->n_top > SS_TUNE_TOP || e->m <= 0 || e->k_out % 32 ||
            !ss_tune_table_lookup_kernel(t, e->kernel, e->qdt, e->k, e->k_out, e->m + 1))
            __builtin_trap();
    }
    char *js = NULL;
    if (ss_tune_table_dump(t, &js) != SS_OK ||
        ss_tune_table_parse(js, strlen(js), "again.json", &u) != SS_OK ||
        ss_tune_table_count(u) != ss_tune_table_count(t) ||
        ss_tune_table_kernel_count(u) != ss_tune_table_kernel_count(t))
        __builtin_trap(); /* what we accept we must be able to write and read back */
    free(js);
    ss_tune_table_free(u);
    ss_tune_table_free(t);
    return 0;
}
