/* Rotary position embedding (CPU), HF rotate_half convention: head vector
 * x = [x1 | x2] (halves of hd/2), out = [x1*c - x2*s | x2*c + x1*s] with angle
 * pos * inv_freq[i] for pair i. */
#include "engine/ops.h"

#include <math.h>

#include "core/dtype_inline.h"

/* inv_freq[i] = 1 / theta^(2i/hd), as HF computes it (rounded to float). */
void ss_rope_inv_freq(double theta, int hd, float *inv_freq) {
    for (int i = 0; i < hd / 2; i++)
        inv_freq[i] = (float)(1.0 / pow(theta, (double)(2 * i) / (double)hd));
}

static void rotate(uint16_t *x, int hd, const float *cs, const float *sn) {
    int h2 = hd / 2;
    for (int i = 0; i < h2; i++) {
        float a = ss_bf16_to_f32_inline(x[i]), b = ss_bf16_to_f32_inline(x[i + h2]);
        x[i] = ss_f32_to_bf16_inline(a * cs[i] - b * sn[i]);
        x[i + h2] = ss_f32_to_bf16_inline(b * cs[i] + a * sn[i]);
    }
}

void ss_rope_cpu(uint16_t *qkv, const ss_tok_info *tok, int64_t t, int nh, int nkv, int hd,
                 const float *inv_freq) {
    int64_t row = (int64_t)(nh + 2 * nkv) * hd;
#pragma omp parallel for schedule(static) if (t * row >= SS_ENGINE_PAR_MIN_WORK)
    for (int64_t r = 0; r < t; r++) {
        float cs[256], sn[256]; /* hd <= 512 is checked at load */
        for (int i = 0; i < hd / 2; i++) {
            float ang = (float)tok[r].pos * inv_freq[i];
            cs[i] = cosf(ang);
            sn[i] = sinf(ang);
        }
        uint16_t *x = qkv + r * row; // (nh + 2*nkv, hd); v heads are not rotated
        for (int h = 0; h < nh + nkv; h++)
            rotate(x + (int64_t)h * hd, hd, cs, sn);
    }
}
