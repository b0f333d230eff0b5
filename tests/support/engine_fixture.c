#include "engine_fixture.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

void ss_ref_load(const char *arch, ss_ref_file *rf) {
    char path[512];
    snprintf(path, sizeof path, "%s/engine/%s/reference.bin", getenv("SS_TEST_DATA"), arch);
    size_t len = 0;
    uint8_t *buf = ss_test_read_file(path, &len);
    if (!buf)
        fail_msg("cannot read %s", path);
    assert_true(len >= 12);
    assert_int_equal(rd_u32(buf), SS_REF_MAGIC);
    assert_int_equal(rd_u32(buf + 4), SS_REF_VERSION);
    uint32_t count = rd_u32(buf + 8);
    assert_true(count <= 64);
    size_t at = 12;
    for (uint32_t i = 0; i < count; i++) {
        ss_ref_rec *r = &rf->rec[i];
        assert_true(at + 4 <= len);
        uint32_t nl = rd_u32(buf + at);
        assert_true(nl < sizeof r->name && at + 4 + nl + 8 <= len);
        memcpy(r->name, buf + at + 4, nl);
        r->name[nl] = 0;
        at += 4 + nl;
        r->dtype = rd_u32(buf + at);
        uint32_t ndim = rd_u32(buf + at + 4);
        at += 8;
        assert_true(r->dtype <= 1 && ndim <= 4 && at + 8 * ndim <= len);
        r->numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            int64_t s;
            memcpy(&s, buf + at, 8);
            assert_true(s >= 0 && s < (1 << 24));
            r->numel *= s;
            at += 8;
        }
        assert_true(at + 4 * (size_t)r->numel <= len);
        /* Records are packed, so copy each into aligned memory. */
        void *copy = malloc(4 * (size_t)r->numel + 4);
        memcpy(copy, buf + at, 4 * (size_t)r->numel);
        r->data = copy;
        at += 4 * (size_t)r->numel;
    }
    assert_int_equal(at, len);
    rf->n = (int)count;
    free(buf);
}

void ss_ref_free(ss_ref_file *rf) {
    for (int i = 0; i < rf->n; i++)
        free((void *)rf->rec[i].data);
}

const ss_ref_rec *ss_ref_get(const ss_ref_file *rf, const char *fmt, int a, int b) {
    char name[64];
    snprintf(name, sizeof name, fmt, a, b);
    for (int i = 0; i < rf->n; i++)
        if (strcmp(rf->rec[i].name, name) == 0)
            return &rf->rec[i];
    fail_msg("reference record %s missing", name);
    return NULL;
}

int ss_ref_count_prompts(const ss_ref_file *rf) {
    int n = 0;
    for (int i = 0; i < rf->n; i++)
        if (strstr(rf->rec[i].name, ".ids"))
            n++;
    return n;
}

void ss_ref_check_greedy(ss_model *m, const ss_ref_file *rf, int p, const char *label, float gap_min,
                         float *logits) {
    const ss_ref_rec *ids = ss_ref_get(rf, "p%d.ids", p, 0);
    const ss_ref_rec *g = ss_ref_get(rf, "p%d.greedy", p, 0), *gap = ss_ref_get(rf, "p%d.gap", p, 0);
    int32_t out[16];
    assert_true(g->numel <= 16);
    assert_ok(ss_generate_greedy(m, ids->data, ids->numel, g->numel, out, logits));
    int checked = 0;
    for (int64_t i = 0; i < g->numel; i++) {
        if (((const float *)gap->data)[i] < gap_min)
            break; /* a near tie: later tokens may legitimately differ */
        assert_int_equal(out[i], ((const int32_t *)g->data)[i]);
        checked++;
    }
    printf("OK  %s p%d greedy: %d of %lld tokens match the reference\n", label, p, checked,
           (long long)g->numel);
    assert_true(checked >= 2);
}

void ss_engine_fixture_dir(const char *arch, char *buf, size_t n) {
    snprintf(buf, n, "%s/engine/%s", getenv("SS_TEST_DATA"), arch);
}

double ss_compare_normalized(const char *what, const float *ours, const float *ref, int64_t n, double tol) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        md = d > md || d != d ? d : md;
        mr = fabs(ref[i]) > mr ? fabs(ref[i]) : mr;
    }
    double rel = md / (mr > 1 ? mr : 1);
    printf("%s %-34s max diff %.3e (normalized %.3e, tol %.0e)\n", rel <= tol ? "OK " : "BAD", what, md,
           rel, tol);
    if (!(rel <= tol))
        fail_msg("%s: normalized max diff %.3e > %.0e", what, rel, tol);
    return rel;
}

void ss_layer_capture_hook(void *user, int layer, const uint16_t *x, int64_t t) {
    ss_layer_capture *c = user;
    for (int64_t i = 0; i < t * c->hidden; i++)
        c->layers[(int64_t)layer * t * c->hidden + i] = ss_bf16_to_f32(x[i]);
}

void ss_write_unslid(const char *slid_dir, const char *config_from, const char *dst, ss_pattern p) {
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(slid_dir, &ck));
    char path[1024];
    assert_int_equal(mkdir(dst, 0755), 0);
    snprintf(path, sizeof path, "%s/config.json", config_from);
    size_t len;
    void *cfg = ss_test_read_file(path, &len);
    assert_non_null(cfg);
    snprintf(path, sizeof path, "%s/config.json", dst);
    ss_test_write_file(path, cfg, len);
    free(cfg);

    size_t n = ss_checkpoint_count(ck);
    void **bufs = calloc(n, sizeof *bufs);
    size_t *sizes = calloc(n, sizeof *sizes);
    ss_st_writer *w;
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    assert_ok(ss_st_writer_open(path, &w));
    const ss_model_config *c = ss_checkpoint_config(ck);
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        int64_t shape[2] = {e->shape[0], e->ndim == 2 ? e->shape[1] : 0};
        if (ss_tensor_role_of(e->name) == SS_ROLE_PROJ && e->dtype == SS_DTYPE_I8) {
            /* K is what config.json implies; recover it from the expected tensors. */
            int64_t k = strstr(e->name, "down_proj") ? c->intermediate_size
                        : strstr(e->name, "o_proj") ? (int64_t)c->num_attention_heads * c->head_dim
                                                    : c->hidden_size;
            assert_int_equal(e->shape[1], ss_slid_k(p, k));
            shape[1] = k;
            sizes[i] = (size_t)(shape[0] * k);
            bufs[i] = malloc(sizes[i]);
            assert_ok(ss_unslide(SS_DTYPE_I8, e->data, shape[0], k, p, bufs[i]));
        }
        assert_ok(ss_st_writer_declare(w, e->name, e->dtype, e->ndim, shape));
    }
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        assert_ok(ss_st_writer_write(w, bufs[i] ? bufs[i] : e->data, bufs[i] ? sizes[i] : e->nbytes));
        free(bufs[i]);
    }
    assert_ok(ss_st_writer_close(w));
    free(bufs);
    free(sizes);
    ss_checkpoint_close(ck);
}
