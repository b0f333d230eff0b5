/* One-turn chat prompts in the role markers of the model families. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

// --- chat prompts -----------------------------------------------------------------------

static int has_added(const ss_tokenizer *t, const char *s) {
    int32_t id = ss_tokenizer_find(t, s);
    return id >= 0 && (t->tok[id].flags & SS_TOK_ADDED);
}

ss_chat_format ss_tokenizer_chat_format(const ss_tokenizer *t, const char *model_type) {
    int eot = has_added(t, "<|eot_id|>");
    if (eot && model_type && strcmp(model_type, "bitnet") == 0)
        return SS_CHAT_BITNET; /* the Llama 3 vocabulary, its own template */
    if (eot && has_added(t, "<|start_header_id|>") && has_added(t, "<|end_header_id|>"))
        return SS_CHAT_LLAMA3;
    if (has_added(t, "<|im_start|>") && has_added(t, "<|im_end|>"))
        return SS_CHAT_CHATML;
    return SS_CHAT_NONE;
}

/* The user text without surrounding whitespace (the Jinja `trim` of the
 * Llama 3 and BitNet templates). */
static void trim(const char *s, size_t *from, size_t *len) {
    size_t a = 0, b = strlen(s);
    uint32_t cp;
    for (size_t i = a; i < b && ss_utf8_next((const uint8_t *)s, b, &i, &cp) && ss_uc_is_space(cp);)
        a = i;
    while (b > a) {
        size_t p = b - 1;
        while (p > a && ((uint8_t)s[p] & 0xC0) == 0x80)
            p--;
        size_t q = p;
        if (!ss_utf8_next((const uint8_t *)s, b, &q, &cp) || !ss_uc_is_space(cp))
            break;
        b = p;
    }
    *from = a, *len = b - a;
}

ss_status ss_tokenizer_chat_prompt(const ss_tokenizer *t, ss_chat_format f, const char *user, char **out,
                                   int32_t *end_of_turn) {
    static const struct {
        const char *before, *after, *eot;
        int trim;
    } fmt[] = {
        [SS_CHAT_LLAMA3] = {"<|start_header_id|>user<|end_header_id|>\n\n",
                            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", 1},
        [SS_CHAT_BITNET] = {"User: ", "<|eot_id|>Assistant: ", "<|eot_id|>", 1},
        [SS_CHAT_CHATML] = {"<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>", 0},
    };
    *out = NULL;
    if (f <= SS_CHAT_NONE || f > SS_CHAT_CHATML)
        return ss_fail(SS_EUNSUPPORTED, "%s: no chat role markers (<|start_header_id|>, <|im_start|>) "
                                        "among its added tokens", t->label);
    size_t from = 0, len = strlen(user);
    if (fmt[f].trim)
        trim(user, &from, &len);
    size_t n = strlen(fmt[f].before) + len + strlen(fmt[f].after) + 1;
    if (!(*out = malloc(n)))
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory");
    snprintf(*out, n, "%s%.*s%s", fmt[f].before, (int)len, user + from, fmt[f].after);
    *end_of_turn = ss_tokenizer_find(t, fmt[f].eot);
    return SS_OK;
}
