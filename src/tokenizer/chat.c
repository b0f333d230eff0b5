/* Chat prompts (one turn or a conversation) in the role markers of the model
 * families. */
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

static const char *const chat_roles[] = {"system", "user", "assistant"};

/* One message in format f's markers (role checked by the caller); appended
 * to buf at *at when it fits, *at advanced by its length either way. */
static void put_message(ss_chat_format f, const char *role, const char *text, char *buf, size_t cap, size_t *at) {
    size_t from = 0, len = strlen(text);
    char Role[16];
    if (f != SS_CHAT_CHATML)
        trim(text, &from, &len); /* the Llama 3 and BitNet templates trim */
    snprintf(Role, sizeof Role, "%s", role);
    Role[0] = (char)(Role[0] - 'a' + 'A'); /* BitNet's `role | capitalize` */
    char *dst = *at < cap ? buf + *at : NULL;
    size_t room = *at < cap ? cap - *at : 0;
    int n = f == SS_CHAT_LLAMA3   ? snprintf(dst, room, "<|start_header_id|>%s<|end_header_id|>\n\n%.*s<|eot_id|>", role,
                                             (int)len, text + from)
            : f == SS_CHAT_BITNET ? snprintf(dst, room, "%s: %.*s<|eot_id|>", Role, (int)len, text + from)
                                  : snprintf(dst, room, "<|im_start|>%s\n%.*s<|im_end|>\n", role, (int)len, text + from);
    *at += (size_t)n;
}

ss_status ss_tokenizer_chat_messages(const ss_tokenizer *t, ss_chat_format f, const ss_chat_message *msgs, int n,
                                     char **out, int32_t *end_of_turn) {
    static const char *const open[] = {
        [SS_CHAT_LLAMA3] = "<|start_header_id|>assistant<|end_header_id|>\n\n",
        [SS_CHAT_BITNET] = "Assistant: ",
        [SS_CHAT_CHATML] = "<|im_start|>assistant\n",
    };
    static const char *const eot[] = {
        [SS_CHAT_LLAMA3] = "<|eot_id|>", [SS_CHAT_BITNET] = "<|eot_id|>", [SS_CHAT_CHATML] = "<|im_end|>"};
    *out = NULL;
    if (f <= SS_CHAT_NONE || f > SS_CHAT_CHATML)
        return ss_fail(SS_EUNSUPPORTED, "%s: no chat role markers (<|start_header_id|>, <|im_start|>) "
                                        "among its added tokens", t->label);
    if (n < 1)
        return ss_fail(SS_EINVAL, "chat: no messages");
    for (int i = 0; i < n; i++) {
        int known = 0;
        for (size_t r = 0; r < sizeof chat_roles / sizeof chat_roles[0]; r++)
            known |= msgs[i].role && strcmp(msgs[i].role, chat_roles[r]) == 0;
        if (!known || !msgs[i].content)
            return ss_fail(SS_EINVAL, "chat: message %d: role '%.32s': expected system, user or assistant with a "
                                      "content", i, msgs[i].role ? msgs[i].role : "");
    }
    size_t len = 0;
    for (int i = 0; i < n; i++)
        put_message(f, msgs[i].role, msgs[i].content, NULL, 0, &len);
    len += strlen(open[f]);
    if (!(*out = malloc(len + 1)))
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory for a chat prompt of %zu bytes", len);
    size_t at = 0;
    for (int i = 0; i < n; i++)
        put_message(f, msgs[i].role, msgs[i].content, *out, len + 1, &at);
    memcpy(*out + at, open[f], strlen(open[f]) + 1);
    *end_of_turn = ss_tokenizer_find(t, eot[f]);
    return SS_OK;
}

ss_status ss_tokenizer_chat_prompt(const ss_tokenizer *t, ss_chat_format f, const char *user, char **out,
                                   int32_t *end_of_turn) {
    const ss_chat_message m = {.role = "user", .content = user};
    return ss_tokenizer_chat_messages(t, f, &m, 1, out, end_of_turn);
}
