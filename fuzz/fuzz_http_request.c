/* libFuzzer target: the request bodies of `slidesparse serve` (tools/http_api.c)
 * on arbitrary bytes, both kinds; an accepted request has every required field
 * and its values in range, and its text goes through every formatter. */
#include <stdint.h>
#include <stdlib.h>

#include "http_api.h"

static void check(http_api_kind k, const uint8_t *data, size_t size) {
    http_api_request r;
    http_api_error e;
    if (http_api_request_parse(k, (const char *)data, size, &r, &e) == 0) {
        if (!r.model || (k == HTTP_API_COMPLETION && !r.prompt) || (k == HTTP_API_CHAT && r.n_messages < 1) ||
            r.max_tokens < 0 || !(r.sampling.temperature >= 0) || !(r.sampling.top_p > 0 && r.sampling.top_p <= 1) ||
            r.sampling.top_k < 0 || r.n_stops > HTTP_API_MAX_STOPS)
            __builtin_trap();
        const char *text = k == HTTP_API_CHAT ? r.messages[0].content : r.prompt;
        http_api_meta m = {.kind = k, .id = "id", .created = 1, .model = r.model};
        http_api_usage u = {1, 2};
        free(http_api_response_json(&m, text, "stop", &u));
        free(http_api_chunk_sse(&m, text, 1, NULL, NULL));
    } else if (e.status != 400 && e.status != 500) {
        __builtin_trap();
    } else {
        free(http_api_error_json(&e));
    }
    http_api_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(HTTP_API_COMPLETION, data, size);
    check(HTTP_API_CHAT, data, size);
    return 0;
}
