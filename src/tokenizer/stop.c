/* Stop strings over streamed text: what may be shown, what is held back
 * because it may begin a stop string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/tokenizer.h"

struct ss_stopper {
    char **stops;
    size_t *len;
    int n;
    int stopped;
    char *held; /* text not shown yet: it may begin a stop string */
    size_t n_held, cap;
    char *show; /* what the last call returned */
    size_t show_cap;
};

void ss_stopper_destroy(ss_stopper *s) {
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->stops[i]);
    free(s->stops);
    free(s->len);
    free(s->held);
    free(s->show);
    free(s);
}

ss_status ss_stopper_create(const char *const *stops, int n, ss_stopper **out) {
    *out = NULL;
    if (n < 0)
        return ss_fail(SS_EINVAL, "stop strings: count %d", n);
    for (int i = 0; i < n; i++)
        if (!stops[i] || !stops[i][0])
            return ss_fail(SS_EINVAL, "stop strings: string %d is empty", i);
    ss_stopper *s = calloc(1, sizeof *s);
    if (!s || !(s->stops = calloc((size_t)n + 1, sizeof *s->stops)) ||
        !(s->len = calloc((size_t)n + 1, sizeof *s->len)))
        goto oom;
    for (s->n = 0; s->n < n; s->n++) {
        if (!(s->stops[s->n] = strdup(stops[s->n])))
            goto oom;
        s->len[s->n] = strlen(stops[s->n]);
    }
    *out = s;
    return SS_OK;
oom:
    ss_stopper_destroy(s);
    return ss_fail(SS_ENOMEM, "stop strings: out of memory");
}

/* The longest tail of held that is a proper prefix of some stop string. */
static size_t prefix_tail(const ss_stopper *s) {
    size_t best = 0;
    for (int i = 0; i < s->n; i++)
        for (size_t k = s->len[i] - 1; k > best; k--)
            if (k <= s->n_held && memcmp(s->held + s->n_held - k, s->stops[i], k) == 0) {
                best = k;
                break;
            }
    return best;
}

/* The first position of any stop string in held, or SIZE_MAX. */
static size_t first_stop(const ss_stopper *s) {
    size_t first = SIZE_MAX;
    for (int i = 0; i < s->n; i++)
        for (size_t p = 0; p + s->len[i] <= s->n_held && p < first; p++)
            if (memcmp(s->held + p, s->stops[i], s->len[i]) == 0) {
                first = p;
                break;
            }
    return first;
}

static ss_status grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap)
        return SS_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return ss_fail(SS_ENOMEM, "stop strings: out of memory");
    *p = q, *cap = c;
    return SS_OK;
}

/* Moves the first k held bytes to the shown text. */
static ss_status show_held(ss_stopper *s, size_t k, const char **show, size_t *show_len) {
    SS_TRY(grow(&s->show, &s->show_cap, k + 1));
    memcpy(s->show, s->held, k);
    s->show[k] = 0;
    memmove(s->held, s->held + k, s->n_held - k);
    s->n_held -= k;
    *show = s->show, *show_len = k;
    return SS_OK;
}

ss_status ss_stopper_push(ss_stopper *s, const char *text, size_t len, const char **show, size_t *show_len,
                          int *stopped) {
    *show = "", *show_len = 0, *stopped = s->stopped;
    if (s->stopped)
        return SS_OK;
    SS_TRY(grow(&s->held, &s->cap, s->n_held + len + 1));
    memcpy(s->held + s->n_held, text, len);
    s->n_held += len;
    size_t at = first_stop(s);
    if (at != SIZE_MAX) {
        s->stopped = *stopped = 1;
        SS_TRY(show_held(s, at, show, show_len));
        s->n_held = 0;
        return SS_OK;
    }
    return show_held(s, s->n_held - prefix_tail(s), show, show_len);
}

void ss_stopper_finish(ss_stopper *s, const char **show, size_t *show_len) {
    *show = "", *show_len = 0;
    if (!s->stopped && s->n_held) {
        s->held[s->n_held] = 0; /* room: grow() kept one byte past the text */
        *show = s->held, *show_len = s->n_held;
    }
    s->n_held = 0;
}
