/* Internal: the tokenizer's data, shared by its loader (load.c), encoder
 * (encode.c), BPE (bpe.c) and decoders (decode.c).
 *
 * Every string lives in one arena and is addressed by offset: the token
 * texts (the vocabulary's byte-level spelling, an added token's content),
 * each token's decoded bytes, and the added tokens' match strings. Nothing
 * changes after load, so one tokenizer may serve many threads.
 */
#ifndef SS_TOKENIZER_INTERNAL_H
#define SS_TOKENIZER_INTERNAL_H

#include <stdint.h>

#include "slidesparse/tokenizer.h"
#include "maps.h"
#include "pretok.h"

#define SS_TOK_MAX_SPLITS 4     /* Split steps in a pre-tokenizer Sequence */
#define SS_TOK_MAX_TEMPLATE 16  /* special ids a post-processor adds on each side */

enum { SS_TOK_PRESENT = 1, SS_TOK_SPECIAL = 2, SS_TOK_ADDED = 4 };

typedef struct {
    uint32_t off, len;         /* the token's text in the arena */
    uint32_t dec_off, dec_len; /* its bytes once decoded */
    uint8_t flags;             /* SS_TOK_* */
} ss_tok_entry;

typedef struct {
    int32_t id;
    uint32_t off, len;  /* the string matched in text (content, NFC'd when normalized) */
    uint8_t lstrip, rstrip;
} ss_added_token;

/* The added tokens matched in one pass, sorted by their bytes; those that
 * start with byte b are tok[first[b] .. first[b + 1]). */
typedef struct {
    ss_added_token *tok;
    size_t n;
    uint32_t first[257];
} ss_added_set;

struct ss_tokenizer {
    char label[256];        /* the file, for errors */
    char *arena;
    size_t arena_len, arena_cap;
    ss_tok_entry *tok;      /* (n_ids) by id */
    int32_t n_ids;
    ss_strmap vocab;        /* the model's vocabulary: byte-level spelling -> id */
    ss_strmap by_text;      /* every token: text -> id (added tokens win) */
    ss_pairmap merges;      /* (left, right) -> (rank, merged id) */
    int32_t byte_id[256];   /* id of the token spelling one byte, -1 when none */
    uint8_t bl_utf8[256][2], bl_len[256]; /* byte -> its byte-level character */
    int32_t unk_id;         /* -1: unknown bytes are dropped */
    int fuse_unk, ignore_merges;
    int nfc;                /* the normalizer is NFC */
    ss_pretok_style split[SS_TOK_MAX_SPLITS];
    int n_split;
    int prefix_space;       /* ByteLevel.add_prefix_space */
    int bl_regex;           /* ByteLevel.use_regex: the GPT-2 regex after the splits */
    ss_added_set raw_added; /* matched on the raw text (normalized: false) */
    ss_added_set norm_added; /* matched on normalized text (normalized: true) */
    int32_t prefix[SS_TOK_MAX_TEMPLATE], suffix[SS_TOK_MAX_TEMPLATE];
    int n_prefix, n_suffix;
};

/* A growable id list. */
typedef struct {
    int32_t *v;
    int64_t n, cap;
} ss_idvec;

ss_status ss_idvec_push(ss_idvec *v, int32_t id);

/* The byte-level alphabet: byte b is the code point b when printable
 * (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF), else 256 + its rank among the others. */
uint32_t ss_bytelevel_char(uint8_t b);
/* The byte of a byte-level character, or -1. */
int ss_bytelevel_byte(uint32_t cp);

/* BPE of one pre-token: `bytes` (len) are raw bytes (an optional leading
 * space first when prefix_space); appends the ids to out. */
ss_status ss_bpe_encode(const ss_tokenizer *t, const uint8_t *bytes, size_t len, int prefix_space,
                        ss_idvec *out);

#endif
