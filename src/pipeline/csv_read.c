/* A small CSV reader for the report: header + rows, RFC 4180 quotes (the
 * kernel CSVs quote GPU names and algorithm descriptions holding commas). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "pipeline_internal.h"

/* Splits one line at p into fields (malloc'd); advances *p past the line. */
static char **split_line(const char **p, int *n) {
    int cap = 8;
    char **f = malloc((size_t)cap * sizeof *f);
    size_t blen = strlen(*p) + 1;
    char *buf = malloc(blen);
    *n = 0;
    if (!f || !buf)
        goto oom;
    const char *s = *p;
    for (;;) {
        size_t l = 0;
        if (*s == '"') {
            for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
                if (*s == '"')
                    s++;
                buf[l++] = *s;
            }
            if (*s == '"')
                s++;
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r')
            buf[l++] = *s++;
        buf[l] = '\0';
        if (*n == cap) {
            char **g = realloc(f, (size_t)(cap *= 2) * sizeof *f);
            if (!g)
                goto oom;
            f = g;
        }
        if (!(f[(*n)++] = strdup(buf)))
            goto oom;
        if (*s != ',')
            break;
        s++;
    }
    while (*s == '\r' || *s == '\n')
        s++;
    *p = s;
    free(buf);
    return f;
oom:
    for (int i = 0; f && i < *n; i++)
        free(f[i]);
    free(f);
    free(buf);
    *n = -1;
    return NULL;
}

ss_status ss_pipe_csv_read(const char *path, ss_pipe_csv *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    SS_TRY(ss_read_file(path, 64 << 20, &text, &len));
    const char *p = text;
    out->cols = split_line(&p, &out->n_cols);
    if (!out->cols) {
        free(text);
        return ss_fail(SS_ENOMEM, "%s: out of memory", path);
    }
    int cap = 0;
    while (*p) {
        int n;
        char **f = split_line(&p, &n);
        if (!f) {
            free(text);
            ss_pipe_csv_free(out);
            return ss_fail(SS_ENOMEM, "%s: out of memory", path);
        }
        /* rows are padded to the header's width so lookups by column never overrun */
        char **row = calloc((size_t)out->n_cols, sizeof *row);
        if (out->n_rows == cap) {
            char ***g = realloc(out->rows, (size_t)(cap = cap ? cap * 2 : 16) * sizeof *g);
            if (g)
                out->rows = g;
            else
                cap = out->n_rows;
        }
        if (!row || out->n_rows == cap) {
            for (int i = 0; i < n; i++)
                free(f[i]);
            free(f);
            free(row);
            free(text);
            ss_pipe_csv_free(out);
            return ss_fail(SS_ENOMEM, "%s: out of memory", path);
        }
        for (int i = 0; i < out->n_cols; i++)
            row[i] = i < n ? f[i] : strdup("");
        for (int i = out->n_cols; i < n; i++)
            free(f[i]);
        free(f);
        out->rows[out->n_rows++] = row;
    }
    free(text);
    return SS_OK;
}

void ss_pipe_csv_free(ss_pipe_csv *c) {
    for (int r = 0; r < c->n_rows; r++) {
        for (int i = 0; i < c->n_cols; i++)
            free(c->rows[r][i]);
        free(c->rows[r]);
    }
    for (int i = 0; i < c->n_cols; i++)
        free(c->cols[i]);
    free(c->rows);
    free(c->cols);
    memset(c, 0, sizeof *c);
}

int ss_pipe_csv_col(const ss_pipe_csv *c, const char *name) {
    for (int i = 0; i < c->n_cols; i++)
        if (!strcmp(c->cols[i], name))
            return i;
    return -1;
}
