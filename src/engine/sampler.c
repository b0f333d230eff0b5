/* Greedy sampling and the logits fingerprint printed by `generate`. */
#include "slidesparse/engine.h"

#include <string.h>

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
