/* Unit tests of the tokenizer on hand-written cases: UTF-8, the Unicode
 * tables, NFC, the pre-tokenizer matchers, BPE merge order, added tokens,
 * decoding (whole and streamed), chat prompts, stop strings, and the
 * rejection of malformed tokenizer.json files. (The comparison with the
 * reference package on a corpus is test_tokenizer_ref.c.) */
#include <jansson.h>
#include <string.h>

#include "ss_test.h"
#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"

// --- helpers ----------------------------------------------------------------------------

/* The GPT-2 byte-to-character map, written out independently of the library:
 * printable bytes stand for themselves, the others become U+0100.. in order. */
static uint32_t byte_char(int b) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable)
        return (uint32_t)b;
    int n = 0;
    for (int i = 0; i < b; i++)
        n += !((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF));
    return 256u + (uint32_t)n;
}

/* "{...}" entries of every byte's token, id = the byte: the base vocabulary. */
static char *byte_vocab_entries(void) {
    json_t *o = json_object();
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        int n = ss_utf8_put(byte_char(b), u);
        json_object_setn_new(o, (const char *)u, (size_t)n, json_integer(b));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    s[strlen(s) - 1] = 0; /* drop the braces: callers add entries */
    memmove(s, s + 1, strlen(s));
    return s;
}

#define LLAMA3_PRE                                                                                           \
    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"                  \
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "                  \
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"                  \
    "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"       \
    "\"use_regex\":false}]}"

typedef struct {
    const char *vocab;      /* extra entries, e.g. "\"ab\":256" (may be "") */
    const char *merges;     /* a JSON array */
    const char *added;      /* a JSON array, or NULL */
    const char *normalizer; /* JSON or NULL */
    const char *post;       /* JSON or NULL */
    const char *model_extra; /* extra model fields, e.g. ",\"ignore_merges\":true" */
    const char *pre;        /* JSON or NULL: the Llama 3 layout */
} tok_spec;

static char *spec_json(const tok_spec *s) {
    char *bytes = byte_vocab_entries();
    size_t n = strlen(bytes) + 8192;
    char *j = malloc(n);
    snprintf(j, n,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{%s%s%s},\"merges\":%s%s},\"added_tokens\":%s,"
             "\"normalizer\":%s,\"pre_tokenizer\":%s,\"post_processor\":%s,\"decoder\":{\"type\":\"ByteLevel\"}}",
             bytes, s->vocab && *s->vocab ? "," : "", s->vocab ? s->vocab : "", s->merges ? s->merges : "[]",
             s->model_extra ? s->model_extra : "", s->added ? s->added : "[]",
             s->normalizer ? s->normalizer : "null", s->pre ? s->pre : LLAMA3_PRE, s->post ? s->post : "null");
    free(bytes);
    return j;
}

static ss_tokenizer *make(const tok_spec *s) {
    char *j = spec_json(s);
    ss_tokenizer *t = NULL;
    assert_ok(ss_tokenizer_parse(j, strlen(j), "test.json", &t));
    free(j);
    return t;
}

/* encode(text) must be exactly want (n). */
static void expect_ids(const ss_tokenizer *t, const char *text, int add_special, const int32_t *want, int64_t n) {
    int32_t *ids;
    int64_t got;
    assert_ok(ss_tokenizer_encode(t, text, strlen(text), add_special, &ids, &got));
    if (got != n || memcmp(ids, want, (size_t)n * sizeof *ids) != 0) {
        printf("encode('%s'):", text);
        for (int64_t i = 0; i < got; i++)
            printf(" %d", ids[i]);
        printf(" (expected %lld ids)\n", (long long)n);
        fail();
    }
    free(ids);
}
#define EXPECT_IDS(t, text, special, ...)                                                                    \
    do {                                                                                                     \
        const int32_t want_[] = {__VA_ARGS__};                                                               \
        expect_ids((t), (text), (special), want_, sizeof want_ / sizeof *want_);                             \
    } while (0)

static void expect_decode(const ss_tokenizer *t, const int32_t *ids, int64_t n, int skip, const char *want) {
    char *text;
    size_t len;
    assert_ok(ss_tokenizer_decode(t, ids, n, skip, &text, &len));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text, want, len);
    free(text);
}

// --- UTF-8 and Unicode ----------------------------------------------------------------------

static void test_utf8(void **st) {
    static const struct {
        const char *s;
        uint32_t cp;
    } ok[] = {{"a", 'a'}, {"\xC3\xA9", 0xE9}, {"\xE2\x82\xAC", 0x20AC}, {"\xF0\x9F\x98\x80", 0x1F600},
              {"\xF4\x8F\xBF\xBF", 0x10FFFF}, {"\xEE\x80\x80", 0xE000}};
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        size_t i = 0;
        uint32_t cp;
        assert_true(ss_utf8_next((const uint8_t *)ok[k].s, strlen(ok[k].s), &i, &cp));
        assert_int_equal(cp, ok[k].cp);
        assert_int_equal(i, strlen(ok[k].s));
        uint8_t u[4];
        assert_int_equal(ss_utf8_put(cp, u), (int)strlen(ok[k].s));
        assert_memory_equal(u, ok[k].s, strlen(ok[k].s));
    }
    /* overlong, surrogate, past U+10FFFF, bad lead, lone continuation, truncated */
    static const char *const bad[] = {"\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                      "\xF5\x80\x80\x80", "\x80", "\xE2\x82", "\xC3"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        size_t i = 0;
        uint32_t cp;
        assert_false(ss_utf8_next((const uint8_t *)bad[k], strlen(bad[k]), &i, &cp));
        assert_int_equal(ss_utf8_valid_prefix((const uint8_t *)bad[k], strlen(bad[k])), 0);
    }
    /* Lossy decoding replaces each maximal subpart of a sequence by one U+FFFD. */
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\xE2\x82\x41", 3, 1), 2);
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\xE2\x82", 2, 0), 0); /* may still complete */
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\xE2\x82", 2, 1), 2);
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\x80\x80", 2, 1), 1);
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\xED\xA0\x80", 3, 1), 1);
    assert_int_equal(ss_utf8_invalid_len((const uint8_t *)"\xF0\x9F\x41", 3, 0), 2);
}

static void test_properties(void **st) {
    static const uint32_t letters[] = {'a', 'Z', 0xE9, 0x436, 0x4E2D, 0x1C5, 0x2B0, 0x5D0, 0x627, 0x1C89};
    static const uint32_t numbers[] = {'0', '9', 0x663, 0x216B, 0xBD, 0xB2, 0xFF11, 0x1D7CE};
    static const uint32_t spaces[] = {' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    static const uint32_t others[] = {'_', '!', 0x200B, 0x1C, 0x1F600, 0x301, 0x200D, 0xFEFF, 0x180E};
    for (size_t i = 0; i < sizeof letters / sizeof *letters; i++)
        assert_true(ss_uc_is_letter(letters[i]) && !ss_uc_is_number(letters[i]) && !ss_uc_is_space(letters[i]));
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++)
        assert_true(ss_uc_is_number(numbers[i]) && !ss_uc_is_letter(numbers[i]));
    for (size_t i = 0; i < sizeof spaces / sizeof *spaces; i++)
        assert_true(ss_uc_is_space(spaces[i]) && !ss_uc_is_letter(spaces[i]));
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        assert_true(!ss_uc_is_letter(others[i]) && !ss_uc_is_number(others[i]) && !ss_uc_is_space(others[i]));
    assert_string_equal(ss_uc_version, "16.0.0"); /* U+1C89 above is new in 16.0 */
    assert_int_equal(ss_uc_ccc_of(0x301), 230);
    assert_int_equal(ss_uc_ccc_of(0x323), 220);
    assert_int_equal(ss_uc_ccc_of('a'), 0);
}

static void expect_nfc(const char *in, const char *want) {
    uint8_t *out;
    size_t n;
    assert_ok(ss_uc_nfc((const uint8_t *)in, strlen(in), &out, &n));
    if (n != strlen(want) || memcmp(out, want, n) != 0)
        fail_msg("NFC of '%s' is '%s', expected '%s'", in, (char *)out, want);
    assert_int_equal(out[n], 0);
    free(out);
}

static void test_nfc(void **st) {
    expect_nfc("plain ASCII", "plain ASCII");
    expect_nfc("e\u0301", "\u00e9");                      /* composes */
    expect_nfc("\u00e9", "\u00e9");                       /* stays */
    expect_nfc("\u212b", "\u00c5");                       /* singleton: Angstrom sign -> A ring */
    expect_nfc("\u0958", "\u0915\u093c");                 /* composition exclusion */
    expect_nfc("a\u0301\u0323", "\u1ea1\u0301");          /* reordered by class, then composed */
    expect_nfc("q\u0307\u0323", "q\u0323\u0307");         /* reordered, nothing to compose */
    expect_nfc("\u1100\u1161\u11a8", "\uac01");           /* Hangul L V T */
    expect_nfc("\uac00\u11a8", "\uac01");                 /* Hangul LV + T */
    expect_nfc("\u0344", "\u0308\u0301");                 /* non-starter decomposition */
    expect_nfc("\u0301e", "\u0301e");                     /* a leading mark blocks nothing after it */
    expect_nfc("A\u030a\u0301", "\u01fa");                /* two compositions in a row */
    expect_nfc("caf\u00e9 x\u0308y", "caf\u00e9 \u1e8dy");
}

// --- pre-tokenizer ------------------------------------------------------------------------

/* The pieces of text under style, joined by '|'. */
static void expect_split(ss_pretok_style style, const char *text, const char *want) {
    size_t n = strlen(text), m = 0, i = 0;
    uint32_t cp[256];
    size_t off[257];
    while (i < n) {
        off[m] = i;
        assert_true(ss_utf8_next((const uint8_t *)text, n, &i, &cp[m++]));
    }
    off[m] = n;
    char got[1024];
    size_t g = 0;
    for (size_t k = 0; k < m;) {
        size_t len = ss_pretok_match(style, cp, m, k);
        if (k)
            got[g++] = '|';
        memcpy(got + g, text + off[k], off[k + len] - off[k]);
        g += off[k + len] - off[k];
        k += len;
    }
    got[g] = 0;
    if (strcmp(got, want) != 0)
        fail_msg("split of '%s' is '%s', expected '%s'", text, got, want);
}

static void test_pretok_llama3(void **st) {
    const ss_pretok_style L = SS_PRETOK_LLAMA3;
    expect_split(L, "Hello world", "Hello| world");
    expect_split(L, "a  \n\n b", "a|  \n\n| b");          /* whitespace up to the last newline */
    expect_split(L, " \r\n\t x", " \r\n|\t| x");
    expect_split(L, "x   ", "x|   ");                        /* trailing run whole */
    expect_split(L, "  word", " | word");                     /* the last space goes with the word */
    expect_split(L, "12345678", "123|456|78");
    expect_split(L, "\u00b9\u00b2\u00b3", "\u00b9\u00b2\u00b3");
    expect_split(L, "don't", "don|'t");
    expect_split(L, "'S'RE'LL", "'S|'RE|'LL");                /* case-insensitive */
    expect_split(L, "I'M", "I|'M");
    expect_split(L, "'\u017ft", "'\u017f|t");                 /* long s folds to s */
    expect_split(L, "!!!\n\n\nx", "!!!\n\n\n|x");
    expect_split(L, "...\n\nabc", "...\n\n|abc");
    expect_split(L, "(x)", "(x|)");
    expect_split(L, "$100", "$|100");
    expect_split(L, "a\n", "a|\n");
    expect_split(L, "\u3000\u3000x", "\u3000|\u3000x");
    expect_split(L, "x\xC2\x85y", "x|\xC2\x85y"); /* U+0085 */
    expect_split(L, "\u0645\u0631\u062d\u0628\u0627 \u0661\u0662\u0663\u0664",
                 "\u0645\u0631\u062d\u0628\u0627| |\u0661\u0662\u0663|\u0664");
}

static void test_pretok_qwen2_gpt2(void **st) {
    expect_split(SS_PRETOK_QWEN2, "1234", "1|2|3|4");
    expect_split(SS_PRETOK_QWEN2, "x 12", "x| |1|2");
    expect_split(SS_PRETOK_QWEN2, "'ve'm", "'ve|'m");
    const ss_pretok_style G = SS_PRETOK_GPT2;
    expect_split(G, "Hello  world", "Hello| | world");
    expect_split(G, "it's", "it|'s");
    expect_split(G, "I'M", "I|'|M"); /* case-sensitive */
    expect_split(G, "x 123", "x| 123");
    expect_split(G, "a\n\nb", "a|\n|\n|b");
    expect_split(G, " ?!x", " ?!|x");
    expect_split(G, "a   ", "a|   ");
    assert_int_equal(ss_pretok_style_of("\\s+", 3), SS_PRETOK_NONE);
}

// --- BPE -------------------------------------------------------------------------------------

static void test_bpe_merge_order(void **st) {
    /* The lowest rank merges first, whatever its position. */
    tok_spec s = {.vocab = "\"bc\":256,\"ab\":257,\"abc\":258", .merges = "[\"b c\",\"a b\",\"a bc\"]"};
    ss_tokenizer *t = make(&s);
    EXPECT_IDS(t, "abc", 0, 258); /* b c, then a bc */
    EXPECT_IDS(t, "ab", 0, 257);
    EXPECT_IDS(t, "abab c", 0, 257, 257, ' ', 'c');
    ss_tokenizer_destroy(t);
    s.merges = "[[\"b\",\"c\"],[\"a\",\"b\"]]"; /* pair form; no a+bc merge */
    t = make(&s);
    EXPECT_IDS(t, "abc", 0, 'a', 256);
    ss_tokenizer_destroy(t);
    s.merges = "[\"a b\",\"b c\"]";
    t = make(&s);
    EXPECT_IDS(t, "abc", 0, 257, 'c'); /* now a b wins */
    ss_tokenizer_destroy(t);
    /* Equal ranks: leftmost first. */
    s = (tok_spec){.vocab = "\"aa\":256", .merges = "[\"a a\"]"};
    t = make(&s);
    EXPECT_IDS(t, "aaa", 0, 256, 'a');
    EXPECT_IDS(t, "aaaa", 0, 256, 256);
    ss_tokenizer_destroy(t);
}

static void test_bpe_ignore_merges_and_unk(void **st) {
    tok_spec s = {.vocab = "\"ab\":256,\"abc\":257", .merges = "[\"a b\"]"};
    ss_tokenizer *t = make(&s);
    EXPECT_IDS(t, "abc", 0, 256, 'c'); /* no merge reaches abc */
    ss_tokenizer_destroy(t);
    s.model_extra = ",\"ignore_merges\":true";
    t = make(&s);
    EXPECT_IDS(t, "abc", 0, 257); /* a whole pre-token in the vocabulary is one token */
    EXPECT_IDS(t, "abcd", 0, 256, 'c', 'd');
    ss_tokenizer_destroy(t);
    /* Bytes without a token: the unknown token (fused or not), or dropped. */
    const char *j = "{\"model\":{\"vocab\":{\"a\":0,\"b\":1,\"<unk>\":2},\"merges\":[],\"unk_token\":\"<unk>\","
                    "\"fuse_unk\":%s},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
                    "\"decoder\":{\"type\":\"ByteLevel\"}}";
    char buf[512];
    snprintf(buf, sizeof buf, j, "true");
    assert_ok(ss_tokenizer_parse(buf, strlen(buf), "unk.json", &t));
    EXPECT_IDS(t, "axxb", 0, 0, 2, 1);
    ss_tokenizer_destroy(t);
    snprintf(buf, sizeof buf, j, "false");
    assert_ok(ss_tokenizer_parse(buf, strlen(buf), "unk.json", &t));
    EXPECT_IDS(t, "axxb", 0, 0, 2, 2, 1);
    ss_tokenizer_destroy(t);
}

static void test_bytelevel_prefix_space(void **st) {
    /* GPT-2 layout: ByteLevel alone, its regex, a space before the text. */
    tok_spec s = {.vocab = "\"\\u0120a\":256", .merges = "[\"\\u0120 a\"]",
                  .pre = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}"};
    ss_tokenizer *t = make(&s);
    EXPECT_IDS(t, "a", 0, 256);
    EXPECT_IDS(t, " a", 0, 256);
    EXPECT_IDS(t, "a a", 0, 256, 256);
    EXPECT_IDS(t, "\ta", 0, ' ', '\t', 'a'); /* " \ta": the space alone, then "\t", then "a" */
    ss_tokenizer_destroy(t);
}

// --- added tokens, post-processor, decoding ----------------------------------------------------

#define ADDED                                                                                                \
    "[{\"id\":300,\"content\":\"<s>\",\"special\":true},{\"id\":301,\"content\":\"</s>\",\"special\":true},"  \
    "{\"id\":302,\"content\":\"<|x|>\",\"special\":true},{\"id\":303,\"content\":\"<|x|>y\",\"normalized\":false},"                \
    "{\"id\":304,\"content\":\"<m>\",\"lstrip\":true,\"special\":true,\"normalized\":false},"                 \
    "{\"id\":305,\"content\":\"[R]\",\"rstrip\":true,\"normalized\":false},"                                  \
    "{\"id\":306,\"content\":\"\\u00e9\\u00e9\",\"normalized\":true}]"
#define TEMPLATE                                                                                             \
    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"       \
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],"       \
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[300],\"tokens\":[\"<s>\"]},"                      \
    "\"</s>\":{\"id\":\"</s>\",\"ids\":[301],\"tokens\":[\"</s>\"]}}}"

static void test_added_tokens(void **st) {
    tok_spec s = {.added = ADDED, .post = TEMPLATE, .normalizer = "{\"type\":\"NFC\"}"};
    ss_tokenizer *t = make(&s);
    EXPECT_IDS(t, "a<|x|>b", 0, 'a', 302, 'b');
    EXPECT_IDS(t, "<|x|>yz", 0, 303, 'z');                /* the longest at the leftmost start */
    EXPECT_IDS(t, "a  <m> b", 0, 'a', 304, ' ', 'b');     /* lstrip takes the spaces before */
    EXPECT_IDS(t, "[R]   x", 0, 305, 'x');                /* rstrip the ones after */
    EXPECT_IDS(t, "e\u0301e\u0301!", 0, 306, '!');        /* normalized, then matched */
    EXPECT_IDS(t, "hi", 1, 300, 'h', 'i', 301);           /* the template around the text */
    EXPECT_IDS(t, "", 1, 300, 301);
    assert_int_equal(ss_tokenizer_find(t, "<|x|>"), 302);
    assert_int_equal(ss_tokenizer_find(t, "a"), 'a');
    assert_int_equal(ss_tokenizer_find(t, "nope"), -1);
    assert_true(ss_tokenizer_is_special(t, 302) && !ss_tokenizer_is_special(t, 303) && !ss_tokenizer_is_special(t, 'a'));
    const int32_t ids[] = {300, 'a', 304, ' ', 'b', 9999, 305};
    expect_decode(t, ids, 7, 0, "<s>a<m> b[R]");
    expect_decode(t, ids, 7, 1, "a b[R]"); /* specials and the unknown id 9999 left out */
    ss_tokenizer_destroy(t);
    /* Without NFC, the decomposed text does not match the token. */
    s.normalizer = NULL;
    t = make(&s);
    EXPECT_IDS(t, "e\u0301", 0, 'e', 0xCC, 0x81);
    ss_tokenizer_destroy(t);
}

static void test_decode_stream(void **st) {
    tok_spec s = {0};
    ss_tokenizer *t = make(&s);
    ss_detokenizer *d;
    const char *out;
    size_t n;
    assert_ok(ss_detokenizer_create(t, 0, &d));
    /* The euro sign's bytes one token each: nothing until the last. */
    assert_ok(ss_detokenizer_push(d, 0xE2, &out, &n));
    assert_int_equal(n, 0);
    assert_ok(ss_detokenizer_push(d, 0x82, &out, &n));
    assert_int_equal(n, 0);
    assert_ok(ss_detokenizer_push(d, 0xAC, &out, &n));
    assert_string_equal(out, "\u20ac");
    assert_ok(ss_detokenizer_push(d, 0xFF, &out, &n)); /* never valid: replaced at once */
    assert_string_equal(out, "\ufffd");
    assert_ok(ss_detokenizer_push(d, 0xF0, &out, &n));
    assert_ok(ss_detokenizer_push(d, 'x', &out, &n)); /* breaks the sequence */
    assert_string_equal(out, "\ufffdx");
    assert_ok(ss_detokenizer_push(d, 0xE2, &out, &n));
    assert_ok(ss_detokenizer_finish(d, &out, &n)); /* truncated at the end */
    assert_string_equal(out, "\ufffd");
    ss_detokenizer_destroy(d);
    const int32_t ids[] = {0xE2, 0x82, 'A', 0xC3, 0xA9};
    expect_decode(t, ids, 5, 0, "\ufffdA\u00e9");
    ss_tokenizer_destroy(t);
}

// --- chat, stop strings ---------------------------------------------------------------------------

static void test_chat(void **st) {
    tok_spec s = {.added = "[{\"id\":300,\"content\":\"<|start_header_id|>\",\"special\":true},"
                           "{\"id\":301,\"content\":\"<|end_header_id|>\",\"special\":true},"
                           "{\"id\":302,\"content\":\"<|eot_id|>\",\"special\":true}]"};
    ss_tokenizer *t = make(&s);
    char *p;
    int32_t eot;
    assert_int_equal(ss_tokenizer_chat_format(t, "llama"), SS_CHAT_LLAMA3);
    assert_int_equal(ss_tokenizer_chat_format(t, "bitnet"), SS_CHAT_BITNET);
    assert_ok(ss_tokenizer_chat_prompt(t, SS_CHAT_LLAMA3, "  Hi there\n", &p, &eot));
    assert_string_equal(p, "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    assert_int_equal(eot, 302);
    free(p);
    assert_ok(ss_tokenizer_chat_prompt(t, SS_CHAT_BITNET, "Hi", &p, &eot));
    assert_string_equal(p, "User: Hi<|eot_id|>Assistant: ");
    free(p);
    /* a conversation: every turn in the markers, the assistant's opened last */
    const ss_chat_message conv[] = {{"system", "Be brief. "}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};
    assert_ok(ss_tokenizer_chat_messages(t, SS_CHAT_LLAMA3, conv, 4, &p, &eot));
    assert_string_equal(p, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(p);
    assert_ok(ss_tokenizer_chat_messages(t, SS_CHAT_BITNET, conv, 2, &p, &eot));
    assert_string_equal(p, "System: Be brief.<|eot_id|>User: Hi<|eot_id|>Assistant: ");
    free(p);
    const ss_chat_message tool = {"tool", "x"};
    assert_fails(ss_tokenizer_chat_messages(t, SS_CHAT_LLAMA3, &tool, 1, &p, &eot), SS_EINVAL, "role 'tool'");
    assert_fails(ss_tokenizer_chat_messages(t, SS_CHAT_LLAMA3, conv, 0, &p, &eot), SS_EINVAL, "no messages");
    ss_tokenizer_destroy(t);
    s.added = "[{\"id\":300,\"content\":\"<|im_start|>\",\"special\":true},"
              "{\"id\":301,\"content\":\"<|im_end|>\",\"special\":true}]";
    t = make(&s);
    assert_int_equal(ss_tokenizer_chat_format(t, "qwen2"), SS_CHAT_CHATML);
    assert_ok(ss_tokenizer_chat_prompt(t, SS_CHAT_CHATML, " Hi", &p, &eot));
    assert_string_equal(p, "<|im_start|>user\n Hi<|im_end|>\n<|im_start|>assistant\n");
    assert_int_equal(eot, 301);
    free(p);
    assert_ok(ss_tokenizer_chat_messages(t, SS_CHAT_CHATML, conv, 2, &p, &eot));
    assert_string_equal(p, "<|im_start|>system\nBe brief. <|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                           "<|im_start|>assistant\n");
    free(p);
    ss_tokenizer_destroy(t);
    s.added = NULL;
    t = make(&s);
    assert_int_equal(ss_tokenizer_chat_format(t, "llama"), SS_CHAT_NONE);
    assert_fails(ss_tokenizer_chat_prompt(t, SS_CHAT_NONE, "Hi", &p, &eot), SS_EUNSUPPORTED,
                 "test.json: no chat role markers");
    ss_tokenizer_destroy(t);
}

/* Pushes each piece, concatenating what is shown; returns whether it stopped. */
static int run_stopper(ss_stopper *s, const char *const *pieces, int n, char *shown) {
    const char *out;
    size_t k;
    int stopped = 0;
    shown[0] = 0;
    for (int i = 0; i < n && !stopped; i++) {
        assert_ok(ss_stopper_push(s, pieces[i], strlen(pieces[i]), &out, &k, &stopped));
        strncat(shown, out, k);
    }
    ss_stopper_finish(s, &out, &k);
    strncat(shown, out, k);
    return stopped;
}

static void test_stop_strings(void **st) {
    const char *const stops[] = {"END", "xyz"};
    ss_stopper *s;
    char shown[256];
    assert_ok(ss_stopper_create(stops, 2, &s));
    const char *out;
    size_t k;
    int stopped;
    assert_ok(ss_stopper_push(s, "abcE", 4, &out, &k, &stopped));
    assert_int_equal(k, 3); /* "E" may start END: held back */
    assert_memory_equal(out, "abc", 3);
    assert_ok(ss_stopper_push(s, "N", 1, &out, &k, &stopped));
    assert_int_equal(k, 0);
    assert_ok(ss_stopper_push(s, "D and more", 10, &out, &k, &stopped));
    assert_true(stopped);
    assert_int_equal(k, 0); /* nothing before END was still held */
    ss_stopper_destroy(s);

    const char *const a[] = {"one E", "Nx two xy", "zzz"};
    assert_ok(ss_stopper_create(stops, 2, &s));
    assert_true(run_stopper(s, a, 3, shown));
    assert_string_equal(shown, "one ENx two "); /* a false start is shown once it fails */
    ss_stopper_destroy(s);
    const char *const b[] = {"no stop ", "here E"};
    assert_ok(ss_stopper_create(stops, 2, &s));
    assert_false(run_stopper(s, b, 2, shown));
    assert_string_equal(shown, "no stop here E"); /* the held tail comes out at the end */
    ss_stopper_destroy(s);
    const char *const empty[] = {""};
    assert_fails(ss_stopper_create(empty, 1, &s), SS_EINVAL, "empty");
}

// --- malformed files ---------------------------------------------------------------------------

static void test_rejects_malformed(void **st) {
    static const struct {
        const char *json, *needle;
        ss_status st;
    } cases[] = {
        {"[1,2", "not valid JSON", SS_EFORMAT},
        {"[]", "expected a JSON object at the top, found an array", SS_EFORMAT},
        {"{}", "model: expected an object, found nothing", SS_EFORMAT},
        {"{\"model\":{\"vocab\":[]}}", "model.vocab: expected an object, found an array", SS_EFORMAT},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "model.type 'WordPiece' is not supported", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":-1},\"merges\":[]}}", "model.vocab['a']: id -1, expected 0..", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":\"1\"},\"merges\":[]}}", "found a string", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "id 0 is given to both", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0,\"a\":1},\"merges\":[]}}", "duplicate", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0,\"b\":99999},\"merges\":[]}}", "token id 99999 is too sparse", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"a c\"]}}", "model.merges[0]: 'c' is not in the vocabulary",
         SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"a a\"]}}", "the merged token 'aa' is not in the vocabulary",
         SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"aa\"]}}", "not two tokens separated by one space", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", "model.merges[0]: expected", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":{}}}", "model.merges: expected an array", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"byte_fallback\":true}}", "byte_fallback", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"dropout\":0.1}}", "model.dropout", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"continuing_subword_prefix\":\"##\"}}",
         "continuing_subword_prefix", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":\"<unk>\"}}", "unk_token '<unk>' is not in",
         SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":0,\"content\":\"b\"}]}",
         "added_tokens: id 0 is both 'b' and 'a'", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"a\"}]}",
         "added token 'a' has id 1 but the vocabulary gives it id 0", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1}]}",
         "added_tokens[0].content: expected a string", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"x\","
         "\"single_word\":true}]}", "single_word is not supported", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":\"NFKC\"}}",
         "normalizer: type 'NFKC' is not supported", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]}}", "pre_tokenizer: none", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":"
         "{\"Regex\":\"\\\\w+\"},\"behavior\":\"Isolated\"}}", "regex '\\w+' is not one of the supported",
         SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Whitespace\"}}",
         "type 'Whitespace' is not supported", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
         "\"decoder\":{\"type\":\"WordPiece\"}}", "decoder: type 'WordPiece' is not supported", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
         "decoder: none", SS_EUNSUPPORTED},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
         "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
         "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"ids\":[7]}}},\"decoder\":{\"type\":"
         "\"ByteLevel\"}}", "special_tokens['<s>'].ids[0]: not a token id", SS_EFORMAT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
         "\"post_processor\":{\"type\":\"BertProcessing\"},\"decoder\":{\"type\":\"ByteLevel\"}}",
         "post_processor: type 'BertProcessing' is not supported", SS_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ss_tokenizer *t = (ss_tokenizer *)1;
        char needle[256];
        ss_status s = ss_tokenizer_parse(cases[i].json, strlen(cases[i].json), "bad.json", &t);
        printf("  %-44.44s -> %s\n", cases[i].json, ss_last_error());
        assert_null(t);
        snprintf(needle, sizeof needle, "%s", cases[i].needle);
        assert_fails(s, cases[i].st, needle);
        assert_non_null(strstr(ss_last_error(), "bad.json: ")); /* names the file */
        assert_null(strchr(ss_last_error(), '\n'));
    }
    ss_tokenizer *t;
    assert_fails(ss_tokenizer_load("/nonexistent/tokenizer.json", &t), SS_EIO, "/nonexistent/tokenizer.json");
    const char *bad_text = "ok\xC3(";
    tok_spec spec = {0};
    t = make(&spec);
    int32_t *ids;
    int64_t n;
    assert_fails(ss_tokenizer_encode(t, bad_text, strlen(bad_text), 0, &ids, &n), SS_EINVAL,
                 "not valid UTF-8 (byte 2 of 4)");
    ss_tokenizer_destroy(t);
}

/* The tiny engine models' tokenizers load, and their bos / eos ids (0 / 1 in
 * config.json) are the tokens the files say. */
static void test_engine_fixtures(void **st) {
    static const char *const arch[] = {"llama", "bitnet", "qwen2"};
    static const char *const eos[] = {"<|end_of_text|>", "<|end_of_text|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/engine/%s/tokenizer.json", getenv("SS_TEST_DATA"), arch[i]);
        ss_tokenizer *t;
        assert_ok(ss_tokenizer_load(path, &t));
        assert_int_equal(ss_tokenizer_find(t, eos[i]), 1);
        assert_true(ss_tokenizer_is_special(t, 1));
        ss_tokenizer_destroy(t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_nfc),
        cmocka_unit_test(test_pretok_llama3),
        cmocka_unit_test(test_pretok_qwen2_gpt2),
        cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_bpe_ignore_merges_and_unk),
        cmocka_unit_test(test_bytelevel_prefix_space),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_decode_stream),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_engine_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
