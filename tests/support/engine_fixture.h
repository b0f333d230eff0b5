/* Shared by the engine test programs (test_engine_cpu.c, test_engine_gpu.c):
 * the tiny checkpoints under tests/data/engine/<arch>/, their transformers
 * reference outputs, and the comparisons made against them. */
#ifndef SS_ENGINE_FIXTURE_H
#define SS_ENGINE_FIXTURE_H

#include "ss_test.h"

#define SS_REF_MAGIC 0x46455253u
#define SS_REF_VERSION 1u

/* One record of reference.bin (format: tools/make_reference.py). */
typedef struct {
    char name[64];
    uint32_t dtype; /* 0 float32, 1 int32 */
    int64_t numel;
    const void *data; /* malloc'd, aligned copy */
} ss_ref_rec;

typedef struct {
    ss_ref_rec rec[64];
    int n;
} ss_ref_file;

/* Reads tests/data/engine/<arch>/reference.bin; any malformed byte fails the test. */
void ss_ref_load(const char *arch, ss_ref_file *rf);
void ss_ref_free(ss_ref_file *rf);
/* The record named printf(fmt, a, b); fails the test when missing. */
const ss_ref_rec *ss_ref_get(const ss_ref_file *rf, const char *fmt, int a, int b);
/* How many prompts (records "p<i>.ids") the reference holds. */
int ss_ref_count_prompts(const ss_ref_file *rf);

/* Greedy continuation of reference prompt p (records p<p>.ids/.greedy/.gap)
 * through m's KV cache == the reference's tokens, which it recomputed over the
 * full sequence every step. Compared up to the first near tie (top-2 gap <
 * gap_min), and at least 2 must be; prints "OK  <label> p<p> greedy: ...".
 * logits: (vocab) scratch for ss_generate_greedy, or NULL. */
void ss_ref_check_greedy(ss_model *m, const ss_ref_file *rf, int p, const char *label, float gap_min,
                         float *logits);

/* buf = $SS_TEST_DATA/engine/<arch>. */
void ss_engine_fixture_dir(const char *arch, char *buf, size_t n);

/* Normalized max error max|ours - ref| / max(max|ref|, 1); prints the
 * STYLE.md "OK/BAD ... max diff" line and fails the test above tol (or on NaN). */
double ss_compare_normalized(const char *what, const float *ours, const float *ref, int64_t n, double tol);

/* Layer hook user data: every layer's output hidden states as float. */
typedef struct {
    float *layers; // (n_layers, t, hidden)
    int64_t hidden;
} ss_layer_capture;

/* An ss_layer_hook that fills the ss_layer_capture passed as `user`. */
void ss_layer_capture_hook(void *user, int layer, const uint16_t *x, int64_t t);

/* Writes dst = the slid checkpoint's tensors with every slid INT8 projection
 * unslid back to (N, K), under the config.json of `config_from` (the dense
 * quantized checkpoint, no slidesparse block). */
void ss_write_unslid(const char *slid_dir, const char *config_from, const char *dst, ss_pattern p);

#endif
