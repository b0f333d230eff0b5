/* Safetensors reader: maps a file read-only and validates its header
 * completely before handing out zero-copy views (format: slidesparse/io.h).
 *
 * Nothing in the file is trusted: the header length is checked against the
 * file size and a cap, every integer is range-checked before arithmetic, and
 * the tensors must tile the data buffer exactly (sorted by offset: contiguous
 * from 0, no gaps, no overlaps, ending at the buffer's end), as the reference
 * implementation requires. ss_safetensors_parse is the shared core and the
 * fuzz entry point.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/cleanup.h"
#include "io/fileutil.h"
#include "io/json_util.h"
#include "slidesparse/io.h"

/* A header larger than this is not a weights file (the reference library
 * uses the same 100 MB limit). */
#define SS_ST_HEADER_MAX ((uint64_t)100 * 1000 * 1000)

typedef struct {
    char *key, *value;
} st_meta;

struct ss_safetensors {
    char *label;           /* file path or caller's label */
    void *map;             /* mmap'd file (open) or NULL (parse) */
    size_t map_len;
    int map_slot;          /* io/cleanup.h entry of the mapping */
    ss_st_entry *entries;  /* (n) in data-offset order */
    size_t n;
    size_t *by_name;       /* (n) indices into entries, sorted by name */
    st_meta *meta;         /* (n_meta) */
    size_t n_meta;
    char *strings;         /* arena holding every name (entries[i].name) */
};

// --- small helpers ---------------------------------------------------------------------

/* Strict safetensors spelling only ("BF16", "F8_E4M3"); the CLI aliases that
 * ss_dtype_parse accepts are not valid in a file. */
static int dtype_from_name(const char *s, ss_dtype *out) {
    for (int t = 0; t < SS_DTYPE_COUNT; t++) {
        const char *name = ss_dtype_name((ss_dtype)t);
        if (name && strcmp(name, s) == 0) {
            *out = (ss_dtype)t;
            return 1;
        }
    }
    return 0;
}

/* "[3, 4]" into buf (for error text). */
static const char *shape_text(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

// --- one header entry ----------------------------------------------------------------------

typedef struct {
    const void *data;  /* start of the data buffer */
    size_t data_len;
    const char *label;
} st_ctx;

static ss_status parse_shape(const st_ctx *c, const char *name, json_t *shape, ss_st_entry *e) {
    if (!shape)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': missing 'shape'", c->label, name);
    if (!json_is_array(shape))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': 'shape' must be an array, found %s",
                       c->label, name, ss_json_type_word(shape));
    size_t nd = json_array_size(shape);
    if (nd > SS_MAX_DIMS)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': shape has %zu dims, at most %d supported",
                       c->label, name, nd, SS_MAX_DIMS);
    e->ndim = (int)nd;
    uint64_t bytes = ss_dtype_size(e->dtype);
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d))
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': shape[%zu] must be an integer, found %s",
                           c->label, name, i, ss_json_type_word(d));
        json_int_t v = json_integer_value(d);
        if (v < 0)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': shape[%zu] is negative (%lld)", c->label,
                           name, i, (long long)v);
        e->shape[i] = v;
        /* No tensor can be larger than the buffer, so overflow checks against
         * SIZE_MAX suffice; the offsets check compares with the real size. */
        if (v != 0 && bytes > SIZE_MAX / (uint64_t)v)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': shape overflows: dims up to [%zu] already exceed %zu bytes",
                           c->label, name, i, (size_t)SIZE_MAX);
        bytes *= (uint64_t)v;
    }
    e->nbytes = (size_t)bytes;
    return SS_OK;
}

static ss_status parse_offsets(const st_ctx *c, const char *name, json_t *off, uint64_t *begin,
                               uint64_t *end) {
    if (!off)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': missing 'data_offsets'", c->label, name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': 'data_offsets' must be an array [begin, end], found %s",
                       c->label, name, json_is_array(off) ? "an array of another length" : ss_json_type_word(off));
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(en))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': 'data_offsets' must hold integers", c->label, name);
    json_int_t vb = json_integer_value(b), ve = json_integer_value(en);
    if (vb < 0 || ve < 0)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] are negative",
                       c->label, name, (long long)vb, (long long)ve);
    if (vb > ve)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] are reversed",
                       c->label, name, (long long)vb, (long long)ve);
    if ((uint64_t)ve > c->data_len)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] run past the data buffer of %zu bytes",
                       c->label, name, (long long)vb, (long long)ve, c->data_len);
    *begin = (uint64_t)vb;
    *end = (uint64_t)ve;
    return SS_OK;
}

static ss_status parse_entry(const st_ctx *c, const char *name, json_t *v, ss_st_entry *e,
                             uint64_t *begin) {
    if (!json_is_object(v))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected an object {dtype, shape, data_offsets}, found %s",
                       c->label, name, ss_json_type_word(v));
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': unexpected key '%s' (expected dtype, shape, data_offsets)",
                           c->label, name, key);
    }
    json_t *dt = json_object_get(v, "dtype");
    if (!dt)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': missing 'dtype'", c->label, name);
    if (!json_is_string(dt))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': 'dtype' must be a string, found %s", c->label,
                       name, ss_json_type_word(dt));
    if (!dtype_from_name(json_string_value(dt), &e->dtype))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", c->label, name,
                       json_string_value(dt));
    SS_TRY(parse_shape(c, name, json_object_get(v, "shape"), e));
    uint64_t end = 0;
    SS_TRY(parse_offsets(c, name, json_object_get(v, "data_offsets"), begin, &end));
    if (end - *begin != e->nbytes) {
        char sh[256];
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, dtype %s x shape %s needs %zu",
                       c->label, name, (unsigned long long)*begin, (unsigned long long)end,
                       (unsigned long long)(end - *begin), ss_dtype_name(e->dtype),
                       shape_text(e->shape, e->ndim, sh, sizeof sh), e->nbytes);
    }
    e->data = (const char *)c->data + *begin;
    return SS_OK;
}

static ss_status parse_metadata(ss_safetensors *st, json_t *m) {
    if (!json_is_object(m))
        return ss_fail(SS_EFORMAT, "%s: __metadata__ must be an object of strings, found %s",
                       st->label, ss_json_type_word(m));
    size_t n = json_object_size(m);
    st->meta = calloc(n ? n : 1, sizeof *st->meta);
    if (!st->meta)
        return ss_fail(SS_ENOMEM, "%s: out of memory for __metadata__", st->label);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return ss_fail(SS_EFORMAT, "%s: __metadata__ '%s' must be a string, found %s", st->label,
                           key, ss_json_type_word(v));
        st_meta *kv = &st->meta[st->n_meta];
        kv->key = strdup(key);
        kv->value = strdup(json_string_value(v));
        st->n_meta++;
        if (!kv->key || !kv->value)
            return ss_fail(SS_ENOMEM, "%s: out of memory for __metadata__", st->label);
    }
    return SS_OK;
}

// --- ordering ---------------------------------------------------------------------------------

typedef struct {
    uint64_t begin, nbytes;
    size_t idx;
} st_order;

static int cmp_order(const void *a, const void *b) {
    const st_order *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    /* Empty tensors first at equal offsets: [5,5] then [5,9] tiles, the
     * reverse order would look like an overlap. */
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_name_idx(const void *a, const void *b, void *ctx) {
    const ss_st_entry *e = ctx;
    return strcmp(e[*(const size_t *)a].name, e[*(const size_t *)b].name);
}

/* Sorts entries by begin offset, then checks they tile [0, data_len). */
static ss_status order_and_check(ss_safetensors *st, uint64_t *begins, size_t data_len) {
    ss_status s = SS_OK;
    size_t n = st->n;
    st_order *ord = malloc((n ? n : 1) * sizeof *ord);
    ss_st_entry *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!ord || !sorted) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory for %zu tensors", st->label, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = (st_order){begins[i], st->entries[i].nbytes, i};
    qsort(ord, n, sizeof *ord, cmp_order);
    uint64_t expect = 0;
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = &st->entries[ord[i].idx];
        uint64_t b = ord[i].begin, en = b + e->nbytes;
        if (b < expect) {
            s = ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap the previous tensor '%s' ending at %llu",
                        st->label, e->name, (unsigned long long)b, (unsigned long long)en,
                        sorted[i - 1].name, (unsigned long long)expect);
            goto done;
        }
        if (b > expect) {
            s = ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap of %llu bytes after offset %llu",
                        st->label, e->name, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)(b - expect), (unsigned long long)expect);
            goto done;
        }
        sorted[i] = *e;
        expect = en;
    }
    if (expect != data_len) {
        s = ss_fail(SS_EFORMAT, "%s: tensors cover %llu bytes of a data buffer of %zu: %llu trailing bytes are unused (gap)",
                    st->label, (unsigned long long)expect, data_len,
                    (unsigned long long)(data_len - expect));
        goto done;
    }
    memcpy(st->entries, sorted, n * sizeof *sorted);
done:
    free(ord);
    free(sorted);
    return s;
}

// --- parse / open / close -----------------------------------------------------------------------

static ss_status parse_header(ss_safetensors *st, json_t *root, const void *data, size_t data_len) {
    st_ctx c = {data, data_len, st->label};
    size_t n_keys = json_object_size(root), names_len = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) names_len += strlen(key) + 1;
    st->entries = calloc(n_keys ? n_keys : 1, sizeof *st->entries);
    uint64_t *begins = calloc(n_keys ? n_keys : 1, sizeof *begins);
    st->strings = malloc(names_len ? names_len : 1);
    if (!st->entries || !begins || !st->strings) {
        free(begins);
        return ss_fail(SS_ENOMEM, "%s: out of memory for %zu header entries", st->label, n_keys);
    }
    ss_status s = SS_OK;
    char *names = st->strings;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((s = parse_metadata(st, v)) != SS_OK)
                break;
            continue;
        }
        ss_st_entry *e = &st->entries[st->n];
        size_t kl = strlen(key) + 1;
        memcpy(names, key, kl);
        e->name = names;
        e->file = st->label;
        names += kl;
        if ((s = parse_entry(&c, key, v, e, &begins[st->n])) != SS_OK)
            break;
        st->n++;
    }
    if (s == SS_OK)
        s = order_and_check(st, begins, data_len);
    free(begins);
    return s;
}

static ss_status build_name_index(ss_safetensors *st) {
    st->by_name = malloc((st->n ? st->n : 1) * sizeof *st->by_name);
    if (!st->by_name)
        return ss_fail(SS_ENOMEM, "%s: out of memory", st->label);
    for (size_t i = 0; i < st->n; i++)
        st->by_name[i] = i;
    qsort_r(st->by_name, st->n, sizeof *st->by_name, cmp_name_idx, st->entries);
    return SS_OK;
}

ss_status ss_safetensors_parse(const void *buf, size_t len, const char *label,
                               ss_safetensors **out) {
    *out = NULL;
    if (!label)
        label = "<memory>";
    ss_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->label = strdup(label))) {
        free(st);
        return ss_fail(SS_ENOMEM, "%s: out of memory", label);
    }
    ss_status s = SS_OK;
    json_t *root = NULL;
    const unsigned char *b = buf;
    if (len < 8) {
        s = ss_fail(SS_EFORMAT, "%s: file too short (%zu bytes) for the 8-byte header length", label, len);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > len - 8) {
        s = ss_fail(SS_EFORMAT, "%s: header length %llu runs past end of file (%zu bytes after the length field)",
                    label, (unsigned long long)hlen, len - 8);
        goto fail;
    }
    if (hlen > SS_ST_HEADER_MAX) {
        s = ss_fail(SS_EFORMAT, "%s: header length %llu exceeds the limit of %llu bytes", label,
                    (unsigned long long)hlen, (unsigned long long)SS_ST_HEADER_MAX);
        goto fail;
    }
    if (hlen < 2 || b[8] != '{') {
        s = ss_fail(SS_EFORMAT, "%s: header is not a JSON object (it must start with '{')", label);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s = ss_fail(SS_EFORMAT, "%s: header is invalid JSON at byte %d: %s", label, jerr.position, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        s = ss_fail(SS_EFORMAT, "%s: header is not a JSON object, found %s", label, ss_json_type_word(root));
        goto fail;
    }
    if ((s = parse_header(st, root, b + 8 + hlen, len - 8 - (size_t)hlen)) != SS_OK)
        goto fail;
    if ((s = build_name_index(st)) != SS_OK)
        goto fail;
    json_decref(root);
    *out = st;
    return SS_OK;
fail:
    json_decref(root);
    ss_safetensors_close(st);
    return s;
}

ss_status ss_safetensors_open(const char *path, ss_safetensors **out) {
    *out = NULL;
    int fd;
    struct stat sb;
    SS_TRY(ss_open_regular(path, &fd, &sb));
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        close(fd);
        return ss_fail(SS_EFORMAT, "%s: file too short (%zu bytes) for the 8-byte header length", path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED)
        return ss_fail_errno(err, "%s: cannot map %zu bytes", path, len);
    ss_status s = ss_safetensors_parse(map, len, path, out);
    if (s != SS_OK) {
        munmap(map, len);
        return s;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    /* A file truncated while mapped raises SIGBUS on the next access: the
     * program's handler names the file through this entry. */
    (*out)->map_slot = ss_cleanup_add_map(map, len, (*out)->label);
    return SS_OK;
}

void ss_safetensors_close(ss_safetensors *st) {
    if (!st)
        return;
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    free(st->entries);
    free(st->by_name);
    free(st->strings);
    free(st->label);
    if (st->map) {
        ss_cleanup_del(st->map_slot);
        munmap(st->map, st->map_len);
    }
    free(st);
}

// --- queries ----------------------------------------------------------------------------------------

size_t ss_safetensors_count(const ss_safetensors *st) { return st->n; }

const ss_st_entry *ss_safetensors_entry(const ss_safetensors *st, size_t i) {
    return i < st->n ? &st->entries[i] : NULL;
}

const ss_st_entry *ss_safetensors_find(const ss_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ss_st_entry *e = &st->entries[st->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *ss_safetensors_metadata(const ss_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}
