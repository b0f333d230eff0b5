/* Synthetic HF-layout BF16 checkpoints with random weights of realistic scale.
 *
 * The generator is counter based (splitmix64 of seed ^ hash(name), then of the
 * element index), so any element can be computed on its own: rows are filled
 * in parallel and the output is the same for any thread count. A normal is
 * approximated by the sum of four 16-bit uniforms (Irwin-Hall, |z| <= 3.46),
 * which is plenty for weights that are only ever quantized and pruned. */
#include "prep_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/cleanup.h"
#include "io/fileutil.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return mix64(seed ^ mix64(h));
}

/* sum of 4 uniforms has mean 2, variance 4/12: z = (sum - 2) * sqrt(3) */
static float normal_at(uint64_t ts, uint64_t i) {
    uint64_t r = mix64(ts + (i + 1) * 0x9E3779B97F4A7C15ull);
    float s = (float)(r & 0xFFFF) + (float)((r >> 16) & 0xFFFF) + (float)((r >> 32) & 0xFFFF) +
              (float)(r >> 48) + 2.0f; /* +4 * 0.5: uniforms centred in their bins */
    return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

float ss_synth_value(uint64_t seed, const char *name, uint64_t i, float mean, float std) {
    return mean + std * normal_at(tensor_seed(seed, name), i);
}

static void tensor_stats(const ss_expected_tensor *t, float *mean, float *std) {
    switch (t->role) {
    case SS_ROLE_NORM: *mean = 1.0f; *std = 0.02f; break;
    case SS_ROLE_PROJ: *mean = 0.0f; *std = 1.0f / sqrtf((float)t->shape[1]); break;
    default: *mean = 0.0f; *std = 0.02f; break; /* embeddings, lm_head, biases */
    }
}

static int64_t tensor_bytes(const ss_expected_tensor *t) {
    return 2 * t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
}

typedef struct {
    uint64_t ts;
    float mean, std;
    uint64_t base;  /* element index of buf[0] */
    uint16_t *buf;
} fill_ctx;

static ss_status fill_rows(void *ctx, int64_t r0, int64_t r1) {
    fill_ctx *f = ctx;
    for (int64_t i = r0; i < r1; i++)
        f->buf[i] = ss_f32_to_bf16(f->mean + f->std * normal_at(f->ts, f->base + (uint64_t)i));
    return SS_OK;
}

#define CHUNK_ELEMS ((int64_t)4 << 20)

static ss_status write_tensor(ss_st_writer *w, uint64_t seed, const ss_expected_tensor *t,
                              uint16_t *buf) {
    float mean, std;
    tensor_stats(t, &mean, &std);
    fill_ctx f = {tensor_seed(seed, t->name), mean, std, 0, buf};
    int64_t n = tensor_bytes(t) / 2;
    for (int64_t done = 0; done < n; done += CHUNK_ELEMS) {
        int64_t m = n - done < CHUNK_ELEMS ? n - done : CHUNK_ELEMS;
        f.base = (uint64_t)done;
        SS_TRY(prep_parallel_rows(m, 16384, fill_rows, &f));
        SS_TRY(ss_st_writer_write(w, buf, (size_t)m * 2));
    }
    return SS_OK;
}

static void shard_name(char *buf, size_t n, int i, int count) {
    if (count == 1)
        snprintf(buf, n, "model.safetensors");
    else
        snprintf(buf, n, "model-%05d-of-%05d.safetensors", i + 1, count);
}

ss_status ss_synth(const ss_synth_opts *o) {
    ss_model_config cfg;
    SS_TRY(ss_preset_config(o->preset, &cfg));
    if (!o->out_dir || !*o->out_dir)
        return ss_fail(SS_EINVAL, "synth: no output directory given");
    ss_expected_tensor *t = NULL;
    size_t nt = 0;
    SS_TRY(ss_model_tensors(&cfg, &t, &nt));

    /* Shard plan: greedy in tensor order, as save_pretrained does. */
    int *shard_of = calloc(nt, sizeof *shard_of);
    uint16_t *buf = malloc((size_t)CHUNK_ELEMS * 2);
    json_t *cj = NULL, *index = NULL, *wmap = NULL;
    ss_st_writer *w = NULL;
    char tmp[PREP_PATH_MAX] = "";
    char made_parent[PREP_PATH_MAX] = ""; /* created here, removed again on failure */
    int began = 0, made_slot = -1;
    ss_status s = SS_OK;
    if (!shard_of || !buf) {
        s = ss_fail(SS_ENOMEM, "synth: out of memory");
        goto fail;
    }
    int64_t total = 0;
    for (size_t i = 0; i < nt; i++)
        total += tensor_bytes(&t[i]);
    int n_shards = 1;
    if (total > PREP_SHARD_TRIGGER) {
        int64_t in_shard = 0;
        n_shards = 1;
        for (size_t i = 0; i < nt; i++) {
            if (in_shard > 0 && in_shard + tensor_bytes(&t[i]) > PREP_SHARD_BYTES) {
                n_shards++;
                in_shard = 0;
            }
            in_shard += tensor_bytes(&t[i]);
            shard_of[i] = n_shards - 1;
        }
    }

    /* Like convert: a missing parent of --out is created (and removed again
     * when synth fails, so an error leaves nothing behind). */
    if ((s = ss_mkdir_parents(o->out_dir, made_parent, sizeof made_parent)) != SS_OK)
        goto fail;
    made_slot = ss_cleanup_add(made_parent, SS_CLEANUP_EMPTY_DIRS);
    if ((s = ss_outdir_begin(o->out_dir, o->force, "config.json", tmp, sizeof tmp)) != SS_OK)
        goto fail;
    began = 1;
    index = json_object();
    wmap = json_object();
    int64_t done_bytes = 0;
    for (int sh = 0; sh < n_shards; sh++) {
        char name[64], path[PREP_PATH_MAX];
        shard_name(name, sizeof name, sh, n_shards);
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        if ((s = ss_st_writer_open(path, &w)) != SS_OK)
            goto fail;
        if ((s = ss_st_writer_set_metadata(w, "format", "pt")) != SS_OK)
            goto fail;
        for (size_t i = 0; i < nt; i++) {
            if (shard_of[i] != sh)
                continue;
            if ((s = ss_st_writer_declare(w, t[i].name, SS_DTYPE_BF16, t[i].ndim, t[i].shape)) != SS_OK)
                goto fail;
            json_object_set_new(wmap, t[i].name, json_string(name));
        }
        for (size_t i = 0; i < nt; i++) {
            if (shard_of[i] != sh)
                continue;
            if ((s = write_tensor(w, o->seed, &t[i], buf)) != SS_OK)
                goto fail;
            done_bytes += tensor_bytes(&t[i]);
            if (o->progress)
                o->progress(o->user, (int64_t)i + 1, (int64_t)nt, done_bytes, total);
        }
        s = ss_st_writer_close(w);
        w = NULL;
        if (s != SS_OK)
            goto fail;
    }
    char path[PREP_PATH_MAX];
    cj = prep_config_json(&cfg);
    snprintf(path, sizeof path, "%s/config.json", tmp);
    if ((s = prep_write_json(path, cj, 0)) != SS_OK)
        goto fail;
    if (n_shards > 1) {
        json_object_set_new(index, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
        json_object_set(index, "weight_map", wmap);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
        if ((s = prep_write_json(path, index, 1)) != SS_OK)
            goto fail;
    }
    if ((s = ss_outdir_commit(tmp, o->out_dir, o->force)) != SS_OK)
        goto fail;
    began = 0;
    made_parent[0] = '\0';
fail:
    ss_st_writer_abort(w);
    if (began)
        ss_outdir_abort(tmp);
    ss_cleanup_del(made_slot);
    if (made_parent[0]) { /* only the empty folders this call created */
        char dir[PREP_PATH_MAX];
        ss_path_parent(o->out_dir, dir, sizeof dir);
        ss_rmdir_made(dir, made_parent);
    }
    json_decref(cj);
    json_decref(index);
    json_decref(wmap);
    free(buf);
    free(shard_of);
    free(t);
    return s;
}
