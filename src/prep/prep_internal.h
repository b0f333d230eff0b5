/* Internal pieces shared by the src/prep files: small file helpers, the
 * input layout (shards in offset order), row-parallel loops that carry the
 * worker's error text back to the calling thread. */
#ifndef SS_PREP_INTERNAL_H
#define SS_PREP_INTERNAL_H

#include <jansson.h>
#include <stdlib.h>

#include "slidesparse/prep.h"

#define PREP_PATH_MAX 4096
/* Synth shards a checkpoint whose tensors exceed this many bytes... */
#define PREP_SHARD_TRIGGER 5000000000LL
/* ...into files of at most this many bytes (as the published 7B shards). */
#define PREP_SHARD_BYTES 4000000000LL

/* config.json of a model configuration (new reference). */
json_t *prep_config_json(const ss_model_config *c);

/* Writes a JSON document (2-space indent, trailing newline) and fsyncs it. */
ss_status prep_write_json(const char *path, json_t *j, int sort_keys);

/* Drops the mapped input pages of [p, p+n) from this process (they are
 * file backed: nothing is lost), so reading a model does not grow RSS. */
void prep_release(const void *p, size_t n);

/* Copies every regular file of in_dir except config.json, *.safetensors and
 * model.safetensors.index.json (tokenizer files, generation_config.json). */
ss_status prep_copy_side_files(const char *in_dir, const char *out_dir);

/* The input tensors grouped by shard, each shard in data-offset order. */
typedef struct {
    char file[256];            /* basename of the shard, reused for the output */
    const ss_st_entry **e;     /* (n) */
    size_t n;
} prep_shard;

typedef struct {
    prep_shard *shards;        /* (n_shards) */
    size_t n_shards;
    size_t n_tensors;
    int64_t total_bytes;
    int indexed;               /* input had model.safetensors.index.json */
} prep_layout;

ss_status prep_layout_build(const ss_checkpoint *ck, prep_layout *out);
void prep_layout_free(prep_layout *l);

/* Runs fn(ctx, r0, r1) over [0, n) in blocks of `block` rows with OpenMP. The
 * first failure's status and text are returned on the calling thread. */
typedef ss_status (*prep_rows_fn)(void *ctx, int64_t r0, int64_t r1);
ss_status prep_parallel_rows(int64_t n, int64_t block, prep_rows_fn fn, void *ctx);

/* Rows per parallel block so a block is ~64 KiB of a row length k. */
int64_t prep_row_block(int64_t k);

/* "<base>.weight" -> "<base>.weight_scale" into buf. */
void prep_scale_name(const char *weight, char *buf, size_t n);
/* Is `name` the weight_scale of a projection? */
int prep_is_scale_name(const char *name);

/* Basename of a path without trailing slashes, into buf. */
void prep_basename(const char *path, char *buf, size_t n);

#endif
