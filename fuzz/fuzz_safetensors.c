/* libFuzzer target: the safetensors header parser on arbitrary bytes. Every
 * accepted image must yield views inside the input; everything is freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slidesparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_safetensors *st = NULL;
    if (ss_safetensors_parse(data, size, "fuzz", &st) != SS_OK)
        return 0;
    for (size_t i = 0; i < ss_safetensors_count(st); i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        const uint8_t *p = e->data;
        if (p < data || p > data + size || e->nbytes > (size_t)(data + size - p) ||
            ss_safetensors_find(st, e->name) != e)
            abort();
        if (e->nbytes) /* touch the ends so ASan sees any stray view */
            (void)(volatile uint8_t)(p[0] ^ p[e->nbytes - 1]);
    }
    (void)ss_safetensors_metadata(st, "format");
    ss_safetensors_close(st);
    return 0;
}
