/* Internal: the pre-tokenizer regexes of byte-level BPE tokenizers, matched
 * by hand over code points (no regex library).
 *
 * A tokenizer.json names its pattern as a regex string; ss_pretok_style_of
 * recognizes the ones below (exact text) and the matcher implements each as
 * the leftmost-first alternation a backtracking engine (Oniguruma, which the
 * `tokenizers` package uses) runs, with find-all semantics: at each position
 * the first alternative that matches wins, the match is taken, and the scan
 * goes on after it.
 *
 *   LLAMA3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   QWEN2   the same with \p{N} in place of \p{N}{1,3}
 *   GPT2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *           (the ByteLevel pre-tokenizer's own, when its use_regex is true)
 *
 * \s is White_Space; (?i:...) folds ASCII case, and Unicode simple case
 * folding also maps U+017F LATIN SMALL LETTER LONG S to 's' (the only
 * non-ASCII character that folds to one of s, t, r, e, v, m, l, d).
 */
#ifndef SS_TOKENIZER_PRETOK_H
#define SS_TOKENIZER_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SS_PRETOK_NONE = 0, /* no split: the whole text is one piece */
    SS_PRETOK_LLAMA3,
    SS_PRETOK_QWEN2,
    SS_PRETOK_GPT2,
} ss_pretok_style;

/* The style whose regex is exactly `pattern` (len bytes); SS_PRETOK_NONE when
 * it is none of them. */
ss_pretok_style ss_pretok_style_of(const char *pattern, size_t len);

/* Length (in code points, >= 1) of the match at cp[i] of the text cp[0..n),
 * i < n. Every position matches one of the alternatives of these patterns,
 * so the pieces tile the text. */
size_t ss_pretok_match(ss_pretok_style style, const uint32_t *cp, size_t n, size_t i);

#endif
