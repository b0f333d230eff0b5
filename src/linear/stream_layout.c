/* The weight layout of the weight-streaming decode GEMM: see stream_layout.h. */
#include "stream_layout.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/compress24.h"

/* A legal nibble for a group with no values (both kept slots zero). */
#define FILLER_NIBBLE 0xCu /* (0, 3): compress24.h rule 4 for an all-zero group */

int64_t ss_stream_steps(int sparse, int64_t kq) {
    int64_t step = sparse ? SS_STREAM_SPARSE_STEP : SS_STREAM_DENSE_STEP;
    return kq <= 0 ? 0 : (kq + step - 1) / step;
}

int64_t ss_stream_tiles(int64_t n) {
    return n <= 0 ? 0 : (n + SS_STREAM_TILE_ROWS - 1) / SS_STREAM_TILE_ROWS;
}

size_t ss_stream_bytes(int sparse, int64_t n, int64_t kq) {
    size_t rec = sparse ? SS_STREAM_SPARSE_RECORD : SS_STREAM_DENSE_RECORD;
    return (size_t)ss_stream_tiles(n) * (size_t)ss_stream_steps(sparse, kq) * rec;
}

// --- the fragment map ---------------------------------------------------------------------------

/* Word i (0..3) of thread t's A fragment: row within the tile and byte column
 * within the step's 32-byte slice (header: a0 r0/c, a1 r1/c, a2 r0/c+16,
 * a3 r1/c+16). */
static void frag_at(int t, int i, int *row, int *col) {
    int w = t / 32, l = t % 32;
    *row = 16 * w + l / 4 + 8 * (i & 1);
    *col = 4 * (l % 4) + 16 * (i >> 1);
}

/* Thread t's metadata word: row within the tile, first group of the step. */
static void meta_at(int t, int *row, int *group) {
    int w = t / 32, l = t % 32;
    *row = 16 * w + l / 4 + 8 * (l % 2);
    *group = 8 * ((l / 2) % 2);
}

/* Walks every 4-byte word of the values part of the layout: calls
 * f(user, record byte offset, source row, source column) with the slice
 * column already offset by the step (in units of the slice: dense K bytes,
 * 2:4 compressed columns). Rows >= n are reported too (the callee zeroes). */
typedef void (*word_fn)(void *user, size_t off, int64_t row, int64_t col);

static void walk_values(int sparse, int64_t n, int64_t kq, word_fn f, void *user) {
    int64_t tiles = ss_stream_tiles(n), steps = ss_stream_steps(sparse, kq);
    size_t rec = sparse ? SS_STREAM_SPARSE_RECORD : SS_STREAM_DENSE_RECORD;
    for (int64_t T = 0; T < tiles; T++)
        for (int64_t s = 0; s < steps; s++) {
            size_t base = (size_t)(T * steps + s) * rec;
            for (int t = 0; t < 128; t++)
                for (int i = 0; i < 4; i++) {
                    int r, c;
                    frag_at(t, i, &r, &c);
                    f(user, base + (size_t)(16 * t + 4 * i), T * SS_STREAM_TILE_ROWS + r,
                      32 * s + c);
                }
        }
}

// --- dense ------------------------------------------------------------------------------------------

typedef struct {
    const uint8_t *src; /* (n, ld) */
    uint8_t *dst;       /* the layout */
    int64_t n, ld, cols; /* columns present in src */
    int unpack;          /* 1: layout -> (n, ld) */
} copy_job;

/* Moves one 4-byte word between the matrix and the layout (zeros outside the
 * matrix when packing; nothing when unpacking them). Columns come in whole
 * aligned words: cols is a multiple of 4 or the word is split at the edge. */
static void copy_word(void *user, size_t off, int64_t row, int64_t col) {
    copy_job *j = user;
    for (int b = 0; b < 4; b++) {
        int inside = row < j->n && col + b < j->cols;
        if (j->unpack) {
            if (inside)
                ((uint8_t *)j->src)[row * j->ld + col + b] = j->dst[off + (size_t)b];
        } else {
            j->dst[off + (size_t)b] = inside ? j->src[row * j->ld + col + b] : 0;
        }
    }
}

static int shape_ok(int64_t n, int64_t kq, int64_t k) {
    return n > 0 && kq > 0 && kq % 32 == 0 && k > 0 && k <= kq;
}

ss_status ss_stream_pack_dense(const void *w, int64_t n, int64_t k, int64_t kq, void *out) {
    if (!w || !out || !shape_ok(n, kq, k))
        return ss_fail(SS_EINVAL, "stream layout: expected n > 0, 0 < k <= kq, kq %% 32 == 0 and "
                       "buffers, found n=%lld k=%lld kq=%lld", (long long)n, (long long)k,
                       (long long)kq);
    copy_job j = {w, out, n, k, k, 0};
    walk_values(0, n, kq, copy_word, &j);
    return SS_OK;
}

// --- 2:4 ----------------------------------------------------------------------------------------------

/* Nibble of group g of row r from compress24's meta (n, ceil(kq/8)); the
 * filler for rows >= n and groups past the row. */
static unsigned nibble_of(const uint8_t *meta, int64_t n, int64_t kq, int64_t r, int64_t g) {
    if (r >= n || 4 * g >= kq)
        return FILLER_NIBBLE;
    uint8_t b = meta[r * ss_meta24_row_bytes(kq) + g / 2];
    return g % 2 ? b >> 4 : b & 15u;
}

static void pack_meta(const uint8_t *meta, int64_t n, int64_t kq, uint8_t *out) {
    int64_t tiles = ss_stream_tiles(n), steps = ss_stream_steps(1, kq);
    for (int64_t T = 0; T < tiles; T++)
        for (int64_t s = 0; s < steps; s++) {
            uint8_t *rec = out + (size_t)(T * steps + s) * SS_STREAM_SPARSE_RECORD +
                           SS_STREAM_META_OFFSET;
            for (int t = 0; t < 128; t++) {
                int r, g0;
                meta_at(t, &r, &g0);
                uint32_t word = 0;
                for (int j = 0; j < 8; j++)
                    word |= (uint32_t)nibble_of(meta, n, kq, T * SS_STREAM_TILE_ROWS + r,
                                                16 * s + g0 + j) << (4 * j);
                memcpy(rec + 4 * t, &word, 4); /* little-endian, as the GPU reads it */
            }
        }
}

ss_status ss_stream_pack_sparse(ss_dtype t, const void *w, int64_t n, int64_t kq, void *out,
                                const char *name) {
    if (t != SS_DTYPE_I8 && t != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "tensor '%s': stream layout: expected I8 or F8_E4M3 weights, "
                       "found %s", name, ss_dtype_name(t));
    if (!w || !out || !shape_ok(n, kq, kq))
        return ss_fail(SS_EINVAL, "tensor '%s': stream layout: expected n > 0 and K' %% 32 == 0, "
                       "found n=%lld K'=%lld", name, (long long)n, (long long)kq);
    uint8_t *values = malloc(ss_compress24_values_bytes(t, n, kq));
    uint8_t *meta = malloc(ss_compress24_meta_bytes(n, kq));
    ss_status rc = SS_OK;
    if (!values || !meta) {
        rc = ss_fail(SS_ENOMEM, "tensor '%s': stream layout: out of host memory", name);
        goto fail;
    }
    rc = ss_compress24(t, w, n, kq, values, meta);
    if (rc != SS_OK) {
        rc = ss_fail(rc, "tensor '%s': %s", name, ss_last_error());
        goto fail;
    }
    copy_job j = {values, out, n, kq / 2, kq / 2, 0};
    walk_values(1, n, kq, copy_word, &j);
    pack_meta(meta, n, kq, out);
fail:
    free(values);
    free(meta);
    return rc;
}

// --- unpack --------------------------------------------------------------------------------------------

/* Rebuilds compress24's meta (n, ceil(kq/8)) from the layout's words. */
static void unpack_meta(const uint8_t *packed, int64_t n, int64_t kq, uint8_t *meta) {
    int64_t tiles = ss_stream_tiles(n), steps = ss_stream_steps(1, kq), rb = ss_meta24_row_bytes(kq);
    memset(meta, 0, (size_t)(n * rb));
    for (int64_t T = 0; T < tiles; T++)
        for (int64_t s = 0; s < steps; s++) {
            const uint8_t *rec = packed + (size_t)(T * steps + s) * SS_STREAM_SPARSE_RECORD +
                                 SS_STREAM_META_OFFSET;
            for (int t = 0; t < 128; t++) {
                int r, g0;
                meta_at(t, &r, &g0);
                int64_t row = T * SS_STREAM_TILE_ROWS + r;
                uint32_t word;
                memcpy(&word, rec + 4 * t, 4);
                for (int j = 0; j < 8 && row < n; j++) {
                    int64_t g = 16 * s + g0 + j;
                    if (4 * g < kq)
                        meta[row * rb + g / 2] |= (uint8_t)(((word >> (4 * j)) & 15u) << (4 * (g % 2)));
                }
            }
        }
}

ss_status ss_stream_unpack(int sparse, const void *packed, int64_t n, int64_t kq, void *out) {
    if (!packed || !out || !shape_ok(n, kq, kq))
        return ss_fail(SS_EINVAL, "stream layout: expected n > 0, kq %% 32 == 0 and buffers, "
                       "found n=%lld kq=%lld", (long long)n, (long long)kq);
    if (!sparse) {
        copy_job j = {out, (uint8_t *)packed, n, kq, kq, 1};
        walk_values(0, n, kq, copy_word, &j);
        return SS_OK;
    }
    uint8_t *values = malloc((size_t)n * (size_t)(kq / 2));
    uint8_t *meta = malloc(ss_compress24_meta_bytes(n, kq));
    ss_status rc = SS_OK;
    if (!values || !meta) {
        rc = ss_fail(SS_ENOMEM, "stream layout: out of host memory");
        goto fail;
    }
    copy_job j = {values, (uint8_t *)packed, n, kq / 2, kq / 2, 1};
    walk_values(1, n, kq, copy_word, &j);
    unpack_meta(packed, n, kq, meta);
    /* the bytes are moved as they are: I8 stands for any 1-byte type here */
    rc = ss_decompress24(SS_DTYPE_I8, values, meta, n, kq, out);
fail:
    free(values);
    free(meta);
    return rc;
}
