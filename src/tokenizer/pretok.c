/* The pre-tokenizer regexes as hand-written matchers (pretok.h says which).
 * Each alternative is a function returning the length of its match at i (0:
 * no match), written out with the backtracking the regex engine would do. */
#include "pretok.h"

#include <string.h>

#include "unicode.h"

static const char LLAMA3_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

ss_pretok_style ss_pretok_style_of(const char *pattern, size_t len) {
    static const struct {
        const char *re;
        ss_pretok_style style;
    } known[] = {{LLAMA3_RE, SS_PRETOK_LLAMA3}, {QWEN2_RE, SS_PRETOK_QWEN2}, {GPT2_RE, SS_PRETOK_GPT2}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strlen(known[k].re) == len && memcmp(known[k].re, pattern, len) == 0)
            return known[k].style;
    return SS_PRETOK_NONE;
}

// --- character classes ------------------------------------------------------------

static int is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }
/* [^\s\p{L}\p{N}] */
static int is_other(uint32_t c) { return !ss_uc_is_space(c) && !ss_uc_is_letter(c) && !ss_uc_is_number(c); }

static size_t run_of(int (*cls)(uint32_t), const uint32_t *cp, size_t n, size_t i) {
    size_t j = i;
    while (j < n && cls(cp[j]))
        j++;
    return j - i;
}

// --- alternatives ----------------------------------------------------------------

/* 's|'t|'re|'ve|'m|'ll|'d, case-folded when `fold` ((?i:...)). */
static size_t contraction(const uint32_t *cp, size_t n, size_t i, int fold) {
    if (cp[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
    if (fold) {
        a = a == 0x17F ? 's' : (a >= 'A' && a <= 'Z') ? a | 0x20 : a;
        b = b == 0x17F ? 's' : (b >= 'A' && b <= 'Z') ? b | 0x20 : b;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' || a == 'v') && b == 'e')
        return 3;
    if (a == 'l' && b == 'l')
        return 3;
    return 0;
}

/* [^\r\n\p{L}\p{N}]?\p{L}+ */
static size_t word_llama(const uint32_t *cp, size_t n, size_t i) {
    size_t k = i;
    uint32_t c = cp[i];
    if (!ss_uc_is_letter(c) && !is_crlf(c) && !ss_uc_is_number(c))
        k++; /* the optional prefix; if no letter follows, the letter run fails anyway */
    size_t letters = run_of(ss_uc_is_letter, cp, n, k);
    return letters ? k - i + letters : 0;
}

/* ` ?X+` for a class X (GPT-2's letters, numbers, others; Llama 3's others). */
static size_t space_then_run(int (*cls)(uint32_t), const uint32_t *cp, size_t n, size_t i) {
    size_t k = i + (cp[i] == ' ' && i + 1 < n && cls(cp[i + 1]));
    size_t r = run_of(cls, cp, n, k);
    return r ? k - i + r : 0;
}

/* \s*[\r\n]+ : the whitespace run, backtracked to end just after its last
 * CR or LF. */
static size_t space_to_newline(const uint32_t *cp, size_t n, size_t i) {
    size_t r = run_of(ss_uc_is_space, cp, n, i);
    for (size_t k = r; k > 0; k--)
        if (is_crlf(cp[i + k - 1]))
            return k;
    return 0;
}

/* \s+(?!\S)|\s+ : the whitespace run, less its last character when a
 * non-space follows and that leaves at least one (so the next piece can
 * carry the space). */
static size_t space_run(const uint32_t *cp, size_t n, size_t i) {
    size_t r = run_of(ss_uc_is_space, cp, n, i);
    return (i + r < n && r > 1) ? r - 1 : r;
}

static size_t match_llama(const uint32_t *cp, size_t n, size_t i, size_t max_digits) {
    size_t len;
    if ((len = contraction(cp, n, i, 1)) || (len = word_llama(cp, n, i)))
        return len;
    if (ss_uc_is_number(cp[i])) {
        len = run_of(ss_uc_is_number, cp, n, i);
        return len < max_digits ? len : max_digits;
    }
    if ((len = space_then_run(is_other, cp, n, i)))
        return len + run_of(is_crlf, cp, n, i + len);
    if ((len = space_to_newline(cp, n, i)))
        return len;
    return space_run(cp, n, i);
}

static size_t match_gpt2(const uint32_t *cp, size_t n, size_t i) {
    size_t len;
    if ((len = contraction(cp, n, i, 0)) || (len = space_then_run(ss_uc_is_letter, cp, n, i)) ||
        (len = space_then_run(ss_uc_is_number, cp, n, i)) || (len = space_then_run(is_other, cp, n, i)))
        return len;
    return space_run(cp, n, i);
}

size_t ss_pretok_match(ss_pretok_style style, const uint32_t *cp, size_t n, size_t i) {
    size_t len;
    switch (style) {
    case SS_PRETOK_LLAMA3: len = match_llama(cp, n, i, 3); break;
    case SS_PRETOK_QWEN2: len = match_llama(cp, n, i, 1); break;
    case SS_PRETOK_GPT2: len = match_gpt2(cp, n, i); break;
    default: len = n - i; break;
    }
    return len ? len : 1; /* unreachable for these patterns; never stall */
}
