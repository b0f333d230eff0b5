/* libFuzzer target: tokenizer.json parsing, then encoding and decoding with
 * what was accepted. The input is JSON, optionally followed by a 0xFF byte
 * (never in valid JSON text) and a text to encode. Checks: every id encoded
 * is one the tokenizer has (it decodes to something or is special), decoded
 * text is valid UTF-8, and streaming decode gives the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slidesparse.h"
#include "tokenizer/unicode.h"

static void check_decode(const ss_tokenizer *t, const int32_t *ids, int64_t n) {
    char *text;
    size_t len;
    if (ss_tokenizer_decode(t, ids, n, 0, &text, &len) != SS_OK)
        return;
    if (ss_utf8_valid_prefix((const uint8_t *)text, len) != len)
        abort();
    ss_detokenizer *d;
    if (ss_detokenizer_create(t, 0, &d) == SS_OK) {
        size_t pos = 0;
        for (int64_t i = 0; i <= n; i++) {
            const char *piece;
            size_t k;
            ss_status s = i < n ? ss_detokenizer_push(d, ids[i], &piece, &k) : ss_detokenizer_finish(d, &piece, &k);
            if (s != SS_OK)
                break;
            if (pos + k > len || memcmp(text + pos, piece, k) != 0)
                abort(); /* streamed text differs from the whole */
            pos += k;
        }
        ss_detokenizer_destroy(d);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *sep = memchr(data, 0xFF, size);
    size_t json_len = sep ? (size_t)(sep - data) : size;
    const char *text = sep ? (const char *)sep + 1 : "Hello, world! 123 <|eot_id|> caf\xc3\xa9  \n\n x";
    size_t text_len = sep ? size - json_len - 1 : strlen(text);
    ss_tokenizer *t = NULL;
    if (ss_tokenizer_parse((const char *)data, json_len, "fuzz.json", &t) != SS_OK)
        return 0;
    int32_t *ids;
    int64_t n;
    for (int special = 0; special < 2; special++) {
        if (ss_tokenizer_encode(t, text, text_len, special, &ids, &n) != SS_OK)
            continue;
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= ss_tokenizer_n_ids(t))
                abort();
        check_decode(t, ids, n);
        free(ids);
    }
    ss_tokenizer_destroy(t);
    return 0;
}
