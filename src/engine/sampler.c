/* Sampling: greedy, and the CPU reference of temperature / top-k / top-p;
 * the logits fingerprint printed by `generate`. */
#include "slidesparse/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int32_t ss_sample_greedy(const float *logits, int64_t vocab) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; i++)
        if (logits[i] == logits[i] && (logits[best] != logits[best] || logits[i] > logits[best]))
            best = i;
    return (int32_t)best;
}

uint64_t ss_logits_hash(const float *logits, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &logits[i], sizeof u);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ULL;
        }
    }
    return h;
}

// --- the sampler ---------------------------------------------------------------------

typedef struct {
    float logit;
    int32_t id;
} cand;

struct ss_sampler {
    ss_sampling p;
    int64_t vocab;
    uint64_t rng[4]; /* xoshiro256** */
    cand *c;         // (vocab)
    double *w;       // (vocab) weights of c
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Uniform in [0, 1) with 53 random bits. */
static double rng_unit(ss_sampler *s) {
    uint64_t *r = s->rng, out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0], r[3] ^= r[1], r[1] ^= r[2], r[0] ^= r[3], r[2] ^= t, r[3] = rotl(r[3], 45);
    return (double)(out >> 11) * 0x1.0p-53;
}

ss_status ss_sampler_create(const ss_sampling *p, int64_t vocab, ss_sampler **out) {
    *out = NULL;
    if (!(p->temperature >= 0 && isfinite(p->temperature)))
        return ss_fail(SS_EINVAL, "sampler: temperature %g, expected a finite value >= 0", (double)p->temperature);
    if (p->top_k < 0)
        return ss_fail(SS_EINVAL, "sampler: top_k %d, expected >= 0 (0: no limit)", (int)p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return ss_fail(SS_EINVAL, "sampler: top_p %g, expected a value in (0, 1]", (double)p->top_p);
    if (vocab < 1)
        return ss_fail(SS_EINVAL, "sampler: vocabulary of %lld, expected >= 1", (long long)vocab);
    ss_sampler *s = calloc(1, sizeof *s);
    if (!s || !(s->c = malloc((size_t)vocab * sizeof *s->c)) || !(s->w = malloc((size_t)vocab * sizeof *s->w))) {
        ss_sampler_destroy(s);
        return ss_fail(SS_ENOMEM, "sampler: out of memory for a vocabulary of %lld", (long long)vocab);
    }
    s->p = *p;
    s->vocab = vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    *out = s;
    return SS_OK;
}

void ss_sampler_destroy(ss_sampler *s) {
    if (!s)
        return;
    free(s->c);
    free(s->w);
    free(s);
}

/* Higher logit first, lower id on ties: a total order, so every sort and
 * selection below has one answer. */
static int cand_before(const cand *a, const cand *b) {
    return a->logit != b->logit ? a->logit > b->logit : a->id < b->id;
}

static int cmp_cand(const void *a, const void *b) {
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* Sift-down of a heap whose root is the LAST candidate in cand_before order. */
static void sift_worst(cand *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && cand_before(&h[c], &h[c + 1]))
            c++;
        if (!cand_before(&h[i], &h[c]))
            return;
        cand t = h[i];
        h[i] = h[c], h[c] = t, i = c;
    }
}

/* The candidates (non-NaN logits), at most top_k of them: a heap of the k
 * best in one pass when k is below the vocabulary. */
static int64_t candidates(ss_sampler *s, const float *logits) {
    int64_t n = 0, k = s->p.top_k > 0 && s->p.top_k < s->vocab ? s->p.top_k : s->vocab;
    for (int64_t i = 0; i < s->vocab; i++) {
        if (logits[i] != logits[i])
            continue;
        cand x = {logits[i], (int32_t)i};
        if (n < k) {
            s->c[n++] = x;
            if (n == k)
                for (int64_t j = k / 2; j-- > 0;)
                    sift_worst(s->c, n, j);
        } else if (cand_before(&x, &s->c[0])) {
            s->c[0] = x;
            sift_worst(s->c, n, 0);
        }
    }
    return n;
}

static double weigh(const ss_sampler *s, int64_t n, float max) {
    double total = 0, t = s->p.temperature;
    for (int64_t i = 0; i < n; i++)
        total += s->w[i] = exp(((double)s->c[i].logit - (double)max) / t);
    return total;
}

/* Top-p: the smallest run of the most likely candidates whose weight reaches
 * top_p of the total. Sorting them all would cost a full sort of the
 * vocabulary per token, so first drop those that cannot be in it: a
 * candidate in it other than the most likely has more than (1 - top_p) /
 * (n - 1) of the total (all that follow it, at most n - 1 of them each no
 * heavier, weigh more than 1 - top_p). The bound is halved against rounding. */
static int64_t nucleus(ss_sampler *s, int64_t n, int64_t best, float max, double total) {
    double cut = n > 1 ? 0.5 * (1.0 - (double)s->p.top_p) / (double)(n - 1) * total : 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == best || s->w[i] >= cut)
            s->c[m++] = s->c[i];
    qsort(s->c, (size_t)m, sizeof *s->c, cmp_cand);
    weigh(s, m, max);
    double cum = 0, want = (double)s->p.top_p * total;
    int64_t keep = 0;
    while (keep < m && (keep == 0 || cum < want))
        cum += s->w[keep++];
    return keep;
}

int32_t ss_sampler_next(ss_sampler *s, const float *logits) {
    if (s->p.temperature == 0)
        return ss_sample_greedy(logits, s->vocab);
    int64_t n = candidates(s, logits), best = 0;
    if (n == 0)
        return ss_sample_greedy(logits, s->vocab);
    for (int64_t i = 1; i < n; i++)
        best = cand_before(&s->c[i], &s->c[best]) ? i : best;
    float max = s->c[best].logit;
    double total = weigh(s, n, max);
    if (s->p.top_p < 1) {
        n = nucleus(s, n, best, max, total);
        total = 0;
        for (int64_t i = 0; i < n; i++)
            total += s->w[i];
    }
    double r = rng_unit(s) * total, cum = 0;
    for (int64_t i = 0; i < n; i++)
        if ((cum += s->w[i]) > r)
            return s->c[i].id;
    return s->c[n - 1].id; /* r rounded up to the total */
}
