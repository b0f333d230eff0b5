/* Tuning tables (SPEC §7): the in-memory table (GEMM entries and our
 * kernels' launch entries), its JSON form (format in slidesparse/tune.h),
 * lookup, and the atomic load/save.
 *
 * The parser treats the file as untrusted: every field is type- and
 * range-checked, unknown backends/dtypes are refused, and a bad entry fails
 * the whole table (a half-applied table is worse than the heuristic).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/tune.h"
#include "tune/fixture.h"

#define SS_TUNE_FORMAT "slidesparse-tuning"
#define SS_TUNE_VERSION 1
#define SS_TUNE_MAX_FILE ((size_t)64 << 20)
#define SS_TUNE_MAX_DIM ((int64_t)1 << 31)

struct ss_tune_table {
    ss_tune_key key;
    ss_tune_entry *e; // (n, cap)
    size_t n, cap;
    ss_tune_kernel_entry *ke; // (nk, kcap)
    size_t nk, kcap;
};

// --- the table ---------------------------------------------------------------------

ss_status ss_tune_table_create(const ss_tune_key *key, ss_tune_table **out) {
    if (!key || !out)
        return ss_fail(SS_EINVAL, "tuning table: key or out pointer is NULL");
    ss_tune_table *t = calloc(1, sizeof *t);
    if (!t)
        return ss_fail(SS_ENOMEM, "tuning table: out of memory");
    t->key = *key;
    *out = t;
    return SS_OK;
}

void ss_tune_table_free(ss_tune_table *t) {
    if (!t)
        return;
    free(t->e);
    free(t->ke);
    free(t);
}

const ss_tune_key *ss_tune_table_key(const ss_tune_table *t) { return t ? &t->key : NULL; }
size_t ss_tune_table_count(const ss_tune_table *t) { return t ? t->n : 0; }
const ss_tune_entry *ss_tune_table_entry(const ss_tune_table *t, size_t i) {
    return t && i < t->n ? &t->e[i] : NULL;
}

static int same_shape(const ss_tune_entry *e, ss_backend b, ss_dtype in, ss_dtype out, int64_t n,
                      int64_t k) {
    return e->backend == b && e->in == in && e->out == out && e->n == n && e->k == k;
}

/* arr (n used of *cap elements of elem bytes) with room for one more: the
 * same pointer, or the array doubled (from `first`); NULL when out of memory
 * (arr and *cap unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first) {
    if (n < *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(arr, c * elem);
    if (p)
        *cap = c;
    return p;
}

ss_status ss_tune_table_put(ss_tune_table *t, const ss_tune_entry *e) {
    if (!t || !e)
        return ss_fail(SS_EINVAL, "tuning table: table or entry is NULL");
    for (size_t i = 0; i < t->n; i++)
        if (same_shape(&t->e[i], e->backend, e->in, e->out, e->n, e->k) && t->e[i].m == e->m) {
            t->e[i] = *e;
            return SS_OK;
        }
    ss_tune_entry *ne = grow(t->e, &t->cap, t->n, sizeof *t->e, 64);
    if (!ne)
        return ss_fail(SS_ENOMEM, "tuning table: out of memory for %zu entries", t->n + 1);
    t->e = ne;
    t->e[t->n++] = *e;
    return SS_OK;
}

const ss_tune_entry *ss_tune_table_lookup(const ss_tune_table *t, ss_backend b, ss_dtype in,
                                          ss_dtype out, int64_t n, int64_t k, int64_t m) {
    const ss_tune_entry *ge = NULL, *largest = NULL; /* smallest m >= request; largest m */
    for (size_t i = 0; t && i < t->n; i++) {
        const ss_tune_entry *e = &t->e[i];
        if (!same_shape(e, b, in, out, n, k))
            continue;
        if (e->m >= m && (!ge || e->m < ge->m))
            ge = e;
        if (!largest || e->m > largest->m)
            largest = e;
    }
    return ge ? ge : largest;
}

const ss_tune_entry *ss_tune_table_find(const ss_tune_table *t, ss_backend b, ss_dtype in,
                                        ss_dtype out, int64_t n, int64_t k, int64_t m) {
    for (size_t i = 0; t && i < t->n; i++)
        if (same_shape(&t->e[i], b, in, out, n, k) && t->e[i].m == m)
            return &t->e[i];
    return NULL;
}

// --- kernel launch entries -----------------------------------------------------------

static int same_kernel(const ss_tune_kernel_entry *e, const char *kernel, ss_dtype qdt, int64_t k,
                       int64_t k_out) {
    return !strcmp(e->kernel, kernel) && e->qdt == qdt && e->k == k && e->k_out == k_out;
}

static int launch_ok(ss_quant_launch l) {
    return (l.vecs == 0 || l.vecs == 1 || l.vecs == 2 || l.vecs == 4 || l.vecs == 8) &&
           (l.pdl == 0 || l.pdl == 1);
}

/* Why e cannot be in a table (the parser's rules), or NULL. */
static const char *kernel_entry_flaw(const ss_tune_kernel_entry *e) {
    if (strcmp(e->kernel, "quant") != 0)
        return "kernel: expected 'quant'";
    if (e->qdt != SS_DTYPE_I8 && e->qdt != SS_DTYPE_F8_E4M3)
        return "qdt: expected I8 or F8_E4M3";
    if (e->k < 1 || e->k > SS_TUNE_MAX_DIM || e->m < 1 || e->m > SS_TUNE_MAX_DIM)
        return "k, m: expected 1..2^31";
    if (e->k_out < 32 || e->k_out > SS_TUNE_MAX_DIM || e->k_out % 32)
        return "k_out: expected a positive multiple of 32";
    if (e->n_top < 1 || e->n_top > SS_TUNE_TOP)
        return "top: expected 1..3 timings";
    if (!launch_ok(e->best))
        return "best: expected vecs 0, 1, 2, 4 or 8 and pdl 0 or 1";
    for (int i = 0; i < e->n_top; i++)
        if (!launch_ok(e->top[i].launch) || !(e->top[i].us >= 0 && e->top[i].us < 1e30))
            return "top: expected vecs 0, 1, 2, 4 or 8, pdl 0 or 1, us >= 0";
    return NULL;
}

size_t ss_tune_table_kernel_count(const ss_tune_table *t) { return t ? t->nk : 0; }
const ss_tune_kernel_entry *ss_tune_table_kernel_entry(const ss_tune_table *t, size_t i) {
    return t && i < t->nk ? &t->ke[i] : NULL;
}

ss_status ss_tune_table_put_kernel(ss_tune_table *t, const ss_tune_kernel_entry *e) {
    if (!t || !e)
        return ss_fail(SS_EINVAL, "tuning table: table or kernel entry is NULL");
    const char *flaw = kernel_entry_flaw(e);
    if (flaw)
        return ss_fail(SS_EINVAL, "tuning table: kernel entry (%.15s %s k %lld -> %lld, m %lld): %s",
                       e->kernel, ss_dtype_name(e->qdt), (long long)e->k, (long long)e->k_out,
                       (long long)e->m, flaw);
    for (size_t i = 0; i < t->nk; i++)
        if (same_kernel(&t->ke[i], e->kernel, e->qdt, e->k, e->k_out) && t->ke[i].m == e->m) {
            t->ke[i] = *e;
            return SS_OK;
        }
    ss_tune_kernel_entry *ne = grow(t->ke, &t->kcap, t->nk, sizeof *t->ke, 16);
    if (!ne)
        return ss_fail(SS_ENOMEM, "tuning table: out of memory for %zu kernel entries", t->nk + 1);
    t->ke = ne;
    t->ke[t->nk++] = *e;
    return SS_OK;
}

const ss_tune_kernel_entry *ss_tune_table_lookup_kernel(const ss_tune_table *t,
                                                        const char *kernel, ss_dtype qdt,
                                                        int64_t k, int64_t k_out, int64_t m) {
    const ss_tune_kernel_entry *ge = NULL, *largest = NULL; /* as ss_tune_table_lookup */
    for (size_t i = 0; t && kernel && i < t->nk; i++) {
        const ss_tune_kernel_entry *e = &t->ke[i];
        if (!same_kernel(e, kernel, qdt, k, k_out))
            continue;
        if (e->m >= m && (!ge || e->m < ge->m))
            ge = e;
        if (!largest || e->m > largest->m)
            largest = e;
    }
    return ge ? ge : largest;
}

const ss_tune_kernel_entry *ss_tune_table_find_kernel(const ss_tune_table *t, const char *kernel,
                                                      ss_dtype qdt, int64_t k, int64_t k_out,
                                                      int64_t m) {
    for (size_t i = 0; t && kernel && i < t->nk; i++)
        if (same_kernel(&t->ke[i], kernel, qdt, k, k_out) && t->ke[i].m == m)
            return &t->ke[i];
    return NULL;
}

// --- JSON: writing -----------------------------------------------------------------------

static json_t *algo_json(const ss_algo *a) {
    json_t *o = json_object();
    json_object_set_new(o, "backend", json_string(ss_backend_name(a->backend)));
    json_object_set_new(o, "alg_id", json_integer(a->alg_id));
    json_object_set_new(o, "split_k", json_integer(a->split_k));
    json_object_set_new(o, "workspace", json_integer((json_int_t)a->workspace));
    if (a->has_opaque) {
        char hex[2 * SS_ALGO_OPAQUE_BYTES + 1];
        for (int i = 0; i < SS_ALGO_OPAQUE_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", a->opaque[i]);
        json_object_set_new(o, "algo", json_string(hex));
    }
    json_object_set_new(o, "desc", json_string(a->desc));
    return o;
}

static void launch_into(json_t *o, ss_quant_launch l) {
    json_object_set_new(o, "vecs", json_integer(l.vecs));
    json_object_set_new(o, "pdl", json_integer(l.pdl));
}

static json_t *kernels_json(const ss_tune_table *t) {
    json_t *arr = json_array();
    for (size_t i = 0; i < t->nk; i++) {
        const ss_tune_kernel_entry *e = &t->ke[i];
        json_t *o = json_object(), *best = json_object(), *top = json_array();
        json_object_set_new(o, "kernel", json_string(e->kernel));
        json_object_set_new(o, "qdt", json_string(ss_dtype_name(e->qdt)));
        json_object_set_new(o, "k", json_integer(e->k));
        json_object_set_new(o, "k_out", json_integer(e->k_out));
        json_object_set_new(o, "m", json_integer(e->m));
        launch_into(best, e->best);
        json_object_set_new(o, "best", best);
        for (int j = 0; j < e->n_top; j++) {
            json_t *x = json_object();
            launch_into(x, e->top[j].launch);
            json_object_set_new(x, "us", json_real(e->top[j].us));
            json_array_append_new(top, x);
        }
        json_object_set_new(o, "top", top);
        json_array_append_new(arr, o);
    }
    return arr;
}

ss_status ss_tune_table_dump(const ss_tune_table *t, char **out) {
    if (!t || !out)
        return ss_fail(SS_EINVAL, "tuning table: table or out pointer is NULL");
    json_t *root = json_object(), *key = json_object(), *arr = json_array();
    json_object_set_new(root, "format", json_string(SS_TUNE_FORMAT));
    json_object_set_new(root, "version", json_integer(SS_TUNE_VERSION));
    json_object_set_new(key, "gpu", json_string(t->key.gpu));
    json_object_set_new(key, "cc", json_integer(t->key.cc));
    json_object_set_new(key, "cublaslt", json_string(t->key.cublaslt));
    json_object_set_new(key, "cusparselt", json_string(t->key.cusparselt));
    json_object_set_new(key, "toolchain", json_string(t->key.toolchain));
    json_object_set_new(root, "key", key);
    for (size_t i = 0; i < t->n; i++) {
        const ss_tune_entry *e = &t->e[i];
        json_t *o = json_object(), *top = json_array();
        json_object_set_new(o, "backend", json_string(ss_backend_name(e->backend)));
        json_object_set_new(o, "in", json_string(ss_dtype_name(e->in)));
        json_object_set_new(o, "out", json_string(ss_dtype_name(e->out)));
        json_object_set_new(o, "n", json_integer(e->n));
        json_object_set_new(o, "k", json_integer(e->k));
        json_object_set_new(o, "m", json_integer(e->m));
        json_object_set_new(o, "best", algo_json(&e->best));
        for (int j = 0; j < e->n_top; j++) {
            json_t *x = json_object();
            json_object_set_new(x, "algo", algo_json(&e->top[j].algo));
            json_object_set_new(x, "us", json_real(e->top[j].us));
            json_object_set_new(x, "tops", json_real(e->top[j].tops));
            json_array_append_new(top, x);
        }
        json_object_set_new(o, "top", top);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "entries", arr);
    json_object_set_new(root, "kernels", kernels_json(t));
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (!s)
        return ss_fail(SS_ENOMEM, "tuning table: out of memory serializing %zu entries", t->n);
    *out = s;
    return SS_OK;
}

// --- JSON: parsing (untrusted) ---------------------------------------------------------------

typedef struct {
    const char *label;
    char where[64]; /* "entry 3" */
} pctx;

static ss_status bad(const pctx *p, const char *field, const char *expected, json_t *found) {
    const char *kind = !found                 ? "nothing"
                       : json_is_string(found)  ? "a string"
                       : json_is_integer(found) ? "an integer"
                       : json_is_real(found)    ? "a number"
                       : json_is_object(found)  ? "an object"
                       : json_is_array(found)   ? "an array"
                                                : "another JSON type";
    return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected %s, found %s", p->label, p->where,
                   field, expected, kind);
}

static ss_status get_str(const pctx *p, json_t *o, const char *f, char *buf, size_t n) {
    json_t *v = json_object_get(o, f);
    if (!json_is_string(v))
        return bad(p, f, "a string", v);
    size_t len = json_string_length(v);
    if (len >= n || strlen(json_string_value(v)) != len)
        return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected a string under %zu bytes without "
                       "NUL, found %zu bytes", p->label, p->where, f, n, len);
    memcpy(buf, json_string_value(v), len + 1);
    return SS_OK;
}

static ss_status get_int(const pctx *p, json_t *o, const char *f, int64_t lo, int64_t hi,
                         int64_t *out) {
    json_t *v = json_object_get(o, f);
    if (!json_is_integer(v))
        return bad(p, f, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected %lld..%lld, found %lld", p->label,
                       p->where, f, (long long)lo, (long long)hi, (long long)x);
    *out = x;
    return SS_OK;
}

static ss_status get_num(const pctx *p, json_t *o, const char *f, double *out) {
    json_t *v = json_object_get(o, f);
    if (!json_is_number(v))
        return bad(p, f, "a number", v);
    double x = json_number_value(v);
    if (!(x >= 0 && x < 1e30))
        return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected a finite number >= 0, found %g",
                       p->label, p->where, f, x);
    *out = x;
    return SS_OK;
}

static ss_status get_backend(const pctx *p, json_t *o, ss_backend *out) {
    char s[32];
    SS_TRY(get_str(p, o, "backend", s, sizeof s));
    if (ss_backend_parse(s, out) != SS_OK)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'backend': expected cpu, cublaslt or "
                       "cusparselt, found '%s'", p->label, p->where, s);
    return SS_OK;
}

static ss_status get_dtype(const pctx *p, json_t *o, const char *f, ss_dtype *out) {
    char s[32];
    SS_TRY(get_str(p, o, f, s, sizeof s));
    if (ss_dtype_parse(s, out) != SS_OK)
        return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected a dtype name, found '%s'",
                       p->label, p->where, f, s);
    return SS_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static ss_status parse_algo(const pctx *p, json_t *o, ss_algo *a) {
    if (!json_is_object(o))
        return bad(p, "algo", "an object", o);
    memset(a, 0, sizeof *a);
    int64_t v;
    SS_TRY(get_backend(p, o, &a->backend));
    SS_TRY(get_int(p, o, "alg_id", -1, 1 << 20, &v));
    a->alg_id = (int)v;
    SS_TRY(get_int(p, o, "split_k", -1, 1 << 16, &v));
    a->split_k = (int)v;
    SS_TRY(get_int(p, o, "workspace", 0, (int64_t)1 << 40, &v));
    a->workspace = (uint64_t)v;
    SS_TRY(get_str(p, o, "desc", a->desc, sizeof a->desc));
    json_t *h = json_object_get(o, "algo");
    if (h) {
        char hex[2 * SS_ALGO_OPAQUE_BYTES + 1];
        SS_TRY(get_str(p, o, "algo", hex, sizeof hex));
        if (strlen(hex) != 2 * SS_ALGO_OPAQUE_BYTES)
            return ss_fail(SS_EFORMAT, "%s: %s: field 'algo': expected %d hex digits, found %zu",
                           p->label, p->where, 2 * SS_ALGO_OPAQUE_BYTES, strlen(hex));
        for (int i = 0; i < SS_ALGO_OPAQUE_BYTES; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return ss_fail(SS_EFORMAT, "%s: %s: field 'algo': expected lowercase hex, found "
                               "'%c%c' at byte %d", p->label, p->where, hex[2 * i], hex[2 * i + 1], i);
            a->opaque[i] = (uint8_t)(hi << 4 | lo);
        }
        a->has_opaque = 1;
    }
    if (a->has_opaque != (a->backend == SS_BACKEND_CUBLASLT))
        return ss_fail(SS_EFORMAT, "%s: %s: field 'algo': expected the opaque algorithm exactly for "
                       "cublaslt, found it %s for %s", p->label, p->where,
                       a->has_opaque ? "present" : "absent", ss_backend_name(a->backend));
    return SS_OK;
}

static ss_status parse_entry(pctx *p, json_t *o, ss_tune_entry *e) {
    if (!json_is_object(o))
        return bad(p, "entries[]", "an object", o);
    memset(e, 0, sizeof *e);
    SS_TRY(get_backend(p, o, &e->backend));
    SS_TRY(get_dtype(p, o, "in", &e->in));
    SS_TRY(get_dtype(p, o, "out", &e->out));
    SS_TRY(get_int(p, o, "n", 1, SS_TUNE_MAX_DIM, &e->n));
    SS_TRY(get_int(p, o, "k", 1, SS_TUNE_MAX_DIM, &e->k));
    SS_TRY(get_int(p, o, "m", 1, SS_TUNE_MAX_DIM, &e->m));
    SS_TRY(parse_algo(p, json_object_get(o, "best"), &e->best));
    if (e->best.backend != e->backend)
        return ss_fail(SS_EFORMAT, "%s: %s: best algorithm is for %s, entry for %s", p->label,
                       p->where, ss_backend_name(e->best.backend), ss_backend_name(e->backend));
    json_t *top = json_object_get(o, "top");
    if (!json_is_array(top) || json_array_size(top) < 1 || json_array_size(top) > SS_TUNE_TOP)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'top': expected an array of 1..%d, found %s",
                       p->label, p->where, SS_TUNE_TOP,
                       json_is_array(top) ? "another length" : "no array");
    for (size_t j = 0; j < json_array_size(top); j++) {
        json_t *x = json_array_get(top, j);
        if (!json_is_object(x))
            return bad(p, "top[]", "an object", x);
        SS_TRY(parse_algo(p, json_object_get(x, "algo"), &e->top[j].algo));
        SS_TRY(get_num(p, x, "us", &e->top[j].us));
        SS_TRY(get_num(p, x, "tops", &e->top[j].tops));
        e->n_top++;
    }
    return SS_OK;
}

static ss_status parse_launch(const pctx *p, json_t *o, const char *field, ss_quant_launch *l) {
    if (!json_is_object(o))
        return bad(p, field, "an object", o);
    int64_t v = 0, pdl = 0;
    SS_TRY(get_int(p, o, "vecs", 0, 8, &v));
    SS_TRY(get_int(p, o, "pdl", 0, 1, &pdl));
    l->vecs = (int)v;
    l->pdl = (int)pdl;
    if (!launch_ok(*l))
        return ss_fail(SS_EFORMAT, "%s: %s: field '%s': expected vecs 0, 1, 2, 4 or 8, found %d",
                       p->label, p->where, field, l->vecs);
    return SS_OK;
}

static ss_status parse_kernel_entry(const pctx *p, json_t *o, ss_tune_kernel_entry *e) {
    if (!json_is_object(o))
        return bad(p, "kernels[]", "an object", o);
    memset(e, 0, sizeof *e);
    SS_TRY(get_str(p, o, "kernel", e->kernel, sizeof e->kernel));
    if (strcmp(e->kernel, "quant") != 0)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'kernel': expected 'quant', found '%s'",
                       p->label, p->where, e->kernel);
    SS_TRY(get_dtype(p, o, "qdt", &e->qdt));
    if (e->qdt != SS_DTYPE_I8 && e->qdt != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'qdt': expected I8 or F8_E4M3, found %s",
                       p->label, p->where, ss_dtype_name(e->qdt));
    SS_TRY(get_int(p, o, "k", 1, SS_TUNE_MAX_DIM, &e->k));
    SS_TRY(get_int(p, o, "k_out", 32, SS_TUNE_MAX_DIM, &e->k_out));
    if (e->k_out % 32)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'k_out': expected a multiple of 32, found %lld",
                       p->label, p->where, (long long)e->k_out);
    SS_TRY(get_int(p, o, "m", 1, SS_TUNE_MAX_DIM, &e->m));
    SS_TRY(parse_launch(p, json_object_get(o, "best"), "best", &e->best));
    json_t *top = json_object_get(o, "top");
    if (!json_is_array(top) || json_array_size(top) < 1 || json_array_size(top) > SS_TUNE_TOP)
        return ss_fail(SS_EFORMAT, "%s: %s: field 'top': expected an array of 1..%d, found %s",
                       p->label, p->where, SS_TUNE_TOP,
                       json_is_array(top) ? "another length" : "no array");
    for (size_t j = 0; j < json_array_size(top); j++) {
        json_t *x = json_array_get(top, j);
        SS_TRY(parse_launch(p, x, "top[]", &e->top[j].launch));
        SS_TRY(get_num(p, x, "us", &e->top[j].us));
        e->n_top++;
    }
    return SS_OK;
}

/* The optional "kernels" array (absent in tables written before it existed). */
static ss_status parse_kernels(pctx *p, json_t *arr, ss_tune_table *t) {
    snprintf(p->where, sizeof p->where, "top level");
    if (!arr)
        return SS_OK;
    if (!json_is_array(arr))
        return bad(p, "kernels", "an array", arr);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        ss_tune_kernel_entry e;
        snprintf(p->where, sizeof p->where, "kernel entry %zu", i);
        SS_TRY(parse_kernel_entry(p, json_array_get(arr, i), &e));
        if (ss_tune_table_find_kernel(t, e.kernel, e.qdt, e.k, e.k_out, e.m))
            return ss_fail(SS_EFORMAT, "%s: kernel entry %zu: (%s %s k %lld -> %lld, m %lld) "
                           "appears twice", p->label, i, e.kernel, ss_dtype_name(e.qdt),
                           (long long)e.k, (long long)e.k_out, (long long)e.m);
        SS_TRY(ss_tune_table_put_kernel(t, &e));
    }
    return SS_OK;
}

static ss_status parse_key(pctx *p, json_t *k, ss_tune_key *key) {
    snprintf(p->where, sizeof p->where, "key");
    if (!json_is_object(k))
        return bad(p, "key", "an object", k);
    int64_t cc;
    SS_TRY(get_str(p, k, "gpu", key->gpu, sizeof key->gpu));
    SS_TRY(get_int(p, k, "cc", 0, 1000, &cc));
    key->cc = (int)cc;
    SS_TRY(get_str(p, k, "cublaslt", key->cublaslt, sizeof key->cublaslt));
    SS_TRY(get_str(p, k, "cusparselt", key->cusparselt, sizeof key->cusparselt));
    SS_TRY(get_str(p, k, "toolchain", key->toolchain, sizeof key->toolchain));
    return SS_OK;
}

static ss_status parse_root(pctx *p, json_t *root, ss_tune_table **out) {
    snprintf(p->where, sizeof p->where, "top level");
    if (!json_is_object(root))
        return bad(p, "(root)", "an object", root);
    char fmt[32];
    int64_t ver;
    SS_TRY(get_str(p, root, "format", fmt, sizeof fmt));
    if (strcmp(fmt, SS_TUNE_FORMAT) != 0)
        return ss_fail(SS_EFORMAT, "%s: field 'format': expected '%s', found '%s'", p->label,
                       SS_TUNE_FORMAT, fmt);
    SS_TRY(get_int(p, root, "version", 0, 1 << 20, &ver));
    if (ver != SS_TUNE_VERSION)
        return ss_fail(SS_EFORMAT, "%s: field 'version': expected %d, found %lld", p->label,
                       SS_TUNE_VERSION, (long long)ver);
    ss_tune_key key;
    memset(&key, 0, sizeof key);
    SS_TRY(parse_key(p, json_object_get(root, "key"), &key));
    json_t *arr = json_object_get(root, "entries");
    snprintf(p->where, sizeof p->where, "top level");
    if (!json_is_array(arr))
        return bad(p, "entries", "an array", arr);
    ss_tune_table *t = NULL;
    SS_TRY(ss_tune_table_create(&key, &t));
    ss_status s = SS_OK;
    for (size_t i = 0; i < json_array_size(arr) && s == SS_OK; i++) {
        ss_tune_entry e;
        snprintf(p->where, sizeof p->where, "entry %zu", i);
        s = parse_entry(p, json_array_get(arr, i), &e);
        if (s == SS_OK && ss_tune_table_find(t, e.backend, e.in, e.out, e.n, e.k, e.m))
            s = ss_fail(SS_EFORMAT, "%s: entry %zu: (%s %s %lld x %lld, m %lld) appears twice",
                        p->label, i, ss_backend_name(e.backend), ss_dtype_name(e.in),
                        (long long)e.n, (long long)e.k, (long long)e.m);
        if (s == SS_OK)
            s = ss_tune_table_put(t, &e);
    }
    if (s == SS_OK)
        s = parse_kernels(p, json_object_get(root, "kernels"), t);
    if (s != SS_OK) {
        ss_tune_table_free(t);
        return s;
    }
    *out = t;
    return SS_OK;
}

ss_status ss_tune_table_parse(const char *json, size_t len, const char *label,
                              ss_tune_table **out) {
    if (!out)
        return ss_fail(SS_EINVAL, "tuning table: out pointer is NULL");
    *out = NULL;
    pctx p = {.label = label ? label : "tuning table"};
    if (!json)
        return ss_fail(SS_EINVAL, "%s: no data", p.label);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return ss_fail(SS_EFORMAT, "%s: expected JSON, found a syntax error at line %d: %s",
                       p.label, err.line, err.text);
    ss_status s = parse_root(&p, root, out);
    json_decref(root);
    return s;
}

// --- files -------------------------------------------------------------------------------------

ss_status ss_tune_table_load(const char *path, ss_tune_table **out) {
    char *buf = NULL;
    size_t len = 0;
    SS_TRY(ss_read_file(path, SS_TUNE_MAX_FILE, &buf, &len));
    ss_status s = ss_tune_table_parse(buf, len, path, out);
    free(buf);
    return s;
}

ss_status ss_tune_table_save(const ss_tune_table *t, const char *path) {
    if (!path)
        return ss_fail(SS_EINVAL, "tuning table: path is NULL");
    char *s = NULL;
    SS_TRY(ss_tune_table_dump(t, &s));
    ss_status st = ss_save_file(path, s, strlen(s));
    free(s);
    return st;
}
