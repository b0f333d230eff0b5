/* libFuzzer target: config.json parsing on arbitrary bytes. */
#include <stdint.h>

#include "slidesparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_model_config c;
    if (ss_model_config_parse((const char *)data, size, "fuzz.json", &c) == SS_OK &&
        (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads))
        __builtin_trap(); /* an accepted config must satisfy the documented checks */
    return 0;
}
