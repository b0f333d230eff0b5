/* slidesparse/tokenizer.h — byte-level BPE tokenizers from a Hugging Face
 * tokenizer.json (Llama 3, Qwen2 / Qwen2.5, BitNet b1.58, GPT-2): text to
 * token ids and back, streaming decode, chat prompts, stop strings.
 *
 * Accepted tokenizer.json (fields not listed are ignored; anything else is
 * rejected with one line naming the file and the field):
 *   model          {"type": "BPE" (or absent), "vocab": {token: id, ...},
 *                   "merges": ["a b", ...] or [["a", "b"], ...] (rank = position),
 *                   "ignore_merges": bool, "unk_token": null | token, "fuse_unk": bool,
 *                   "byte_fallback": false, "dropout": null | 0,
 *                   "continuing_subword_prefix", "end_of_word_suffix": null | ""}
 *   added_tokens   [{"id", "content", "special", "lstrip", "rstrip", "normalized",
 *                    "single_word": false}, ...]
 *   normalizer     null | {"type": "NFC"} | {"type": "Sequence", "normalizers": [NFC, ...]}
 *   pre_tokenizer  {"type": "Sequence", "pretokenizers": [Split..., ByteLevel]} | ByteLevel
 *                  Split: {"pattern": {"Regex": R}, "behavior": "Isolated", "invert": false}
 *                  with R the Llama 3, Qwen2 or GPT-2 regex (src/tokenizer/pretok.h);
 *                  ByteLevel: {"add_prefix_space": bool, "use_regex": bool} (the GPT-2 regex)
 *   post_processor null | ByteLevel | TemplateProcessing (its "single" template:
 *                  special tokens around $A) | {"type": "Sequence", "processors": [...]}
 *   decoder        ByteLevel, or a Sequence holding only ByteLevel
 * Token ids may have gaps; the largest must stay below 2 x (number of tokens) + 1024.
 *
 * Encoding is that of the `tokenizers` package (and is tested against it):
 * added tokens are cut out of the raw text first (leftmost, then longest;
 * lstrip / rstrip take the whitespace beside them), then each remaining part
 * is normalized, cut again at the added tokens marked "normalized", split by
 * the pre-tokenizer regex, mapped byte by byte to the byte-level alphabet and
 * merged by BPE (lowest merge rank first, leftmost on ties). Decoding maps
 * tokens back to bytes and replaces each invalid UTF-8 subsequence by U+FFFD;
 * ids with no token are skipped.
 */
#ifndef SLIDESPARSE_TOKENIZER_H
#define SLIDESPARSE_TOKENIZER_H

#include "slidesparse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ss_tokenizer ss_tokenizer; /* opaque, immutable after load */

/* Reads and validates a tokenizer.json. */
ss_status ss_tokenizer_load(const char *path, ss_tokenizer **out);
/* The same from memory (the fuzz entry point); `label` names it in errors. */
ss_status ss_tokenizer_parse(const char *json, size_t len, const char *label, ss_tokenizer **out);
void ss_tokenizer_destroy(ss_tokenizer *t);

/* Largest token id + 1. */
int32_t ss_tokenizer_n_ids(const ss_tokenizer *t);
/* The id of the token whose text is `token` (an added token's content, or a
 * vocabulary entry in its byte-level spelling), or -1. */
int32_t ss_tokenizer_find(const ss_tokenizer *t, const char *token);
/* 1 when id is an added token marked special. */
int ss_tokenizer_is_special(const ss_tokenizer *t, int32_t id);

/* text (len bytes of valid UTF-8; SS_EINVAL naming the byte offset
 * otherwise) -> *ids (malloc'd, *n of them; free() them). add_special adds the
 * post-processor's special tokens (Llama 3: <|begin_of_text|> in front). */
ss_status ss_tokenizer_encode(const ss_tokenizer *t, const char *text, size_t len, int add_special,
                              int32_t **ids, int64_t *n);
/* ids -> *text (malloc'd, *len bytes + a NUL; valid UTF-8). skip_special
 * leaves out special added tokens. */
ss_status ss_tokenizer_decode(const ss_tokenizer *t, const int32_t *ids, int64_t n, int skip_special,
                              char **text, size_t *len);

// --- streaming decode ----------------------------------------------------------------

/* Decodes one id at a time: each push returns the text that is complete so
 * far, holding back the bytes of a character split over tokens until it is
 * whole. The pushes' texts plus finish's equal ss_tokenizer_decode of all
 * the ids. */
typedef struct ss_detokenizer ss_detokenizer; /* opaque */

ss_status ss_detokenizer_create(const ss_tokenizer *t, int skip_special, ss_detokenizer **out);
/* *text (*len bytes, NUL-terminated) stays valid until the next call on d. */
ss_status ss_detokenizer_push(ss_detokenizer *d, int32_t id, const char **text, size_t *len);
/* What is still held (an incomplete character, as U+FFFD); resets d. */
ss_status ss_detokenizer_finish(ss_detokenizer *d, const char **text, size_t *len);
void ss_detokenizer_destroy(ss_detokenizer *d);

// --- chat prompts --------------------------------------------------------------------

typedef enum {
    SS_CHAT_NONE = 0, /* the tokenizer has no role markers */
    SS_CHAT_LLAMA3,   /* <|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|>
                         <|start_header_id|>assistant<|end_header_id|>\n\n */
    SS_CHAT_BITNET,   /* User: ...<|eot_id|>Assistant:  (BitNet b1.58 2B4T) */
    SS_CHAT_CHATML,   /* <|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n (Qwen2) */
} ss_chat_format;

/* The role markers this tokenizer has (as added tokens): Llama 3's, or
 * ChatML's; BitNet's when model_type is "bitnet" and the tokenizer has
 * <|eot_id|>. model_type (config.json's) may be NULL. */
ss_chat_format ss_tokenizer_chat_format(const ss_tokenizer *t, const char *model_type);
/* The one-turn prompt of format f around the user text (trimmed of
 * surrounding whitespace for Llama 3 and BitNet, as their templates do):
 * *out malloc'd and NUL-terminated; *end_of_turn the id that ends the
 * assistant's turn (<|eot_id|>, <|im_end|>). SS_EUNSUPPORTED for SS_CHAT_NONE. */
ss_status ss_tokenizer_chat_prompt(const ss_tokenizer *t, ss_chat_format f, const char *user, char **out,
                                   int32_t *end_of_turn);

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* NUL-terminated UTF-8 */
} ss_chat_message;

/* A conversation of n >= 1 messages in format f's markers (each content
 * trimmed for Llama 3 and BitNet; BitNet spells the role capitalized,
 * "User: "), then the assistant's turn opened; ss_tokenizer_chat_prompt is
 * this with one user message. SS_EINVAL for another role, a NULL content or
 * no message; SS_EUNSUPPORTED for SS_CHAT_NONE. */
ss_status ss_tokenizer_chat_messages(const ss_tokenizer *t, ss_chat_format f, const ss_chat_message *msgs, int n,
                                     char **out, int32_t *end_of_turn);

// --- stop strings ----------------------------------------------------------------------

/* Watches streamed text for stop strings: push returns the text that can be
 * shown (holding back a tail that may be the start of a stop string) and
 * says when one appeared, in which case the text before it is the last shown. */
typedef struct ss_stopper ss_stopper; /* opaque */

/* n strings (copied), each non-empty. */
ss_status ss_stopper_create(const char *const *stops, int n, ss_stopper **out);
/* *show (*show_len bytes) stays valid until the next call on s; *stopped is
 * set to 1 once a stop string appeared (later pushes show nothing). */
ss_status ss_stopper_push(ss_stopper *s, const char *text, size_t len, const char **show, size_t *show_len,
                          int *stopped);
/* The held-back tail, at the end of generation (nothing once stopped). */
void ss_stopper_finish(ss_stopper *s, const char **show, size_t *show_len);
void ss_stopper_destroy(ss_stopper *s);

#ifdef __cplusplus
}
#endif
#endif
