/* Hugging Face checkpoint directory: config.json plus model.safetensors, or
 * shards listed in model.safetensors.index.json.
 *
 * The index is untrusted like the shards: shard names must be plain file
 * names (no path separators, no "." or ".."), so a checkpoint cannot make us
 * read outside its directory; each shard is opened once; the index must map
 * exactly the tensors the shards hold, each to the shard that holds it, and
 * no tensor may appear in two shards.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "compressed_tensors.h"
#include "io/fileutil.h"
#include "slidesparse/io.h"

#define SS_INDEX_MAX ((size_t)64 << 20)

struct ss_checkpoint {
    char *dir;
    char *config_json;           /* raw text, NUL-terminated */
    ss_model_config config;
    ss_safetensors **shards;     /* (n_shards) */
    size_t n_shards;
    const ss_st_entry **entries; /* (n) shard by shard, each in offset order */
    size_t n;
    const ss_st_entry **by_name; /* (n) sorted by name */
    ss_st_entry *mapped;         /* (n_mapped) compressed-tensors scales in our layout */
    size_t n_mapped;
};

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp((*(const ss_st_entry *const *)a)->name, (*(const ss_st_entry *const *)b)->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A shard name from the index: a plain file name in the checkpoint dir. */
static int plain_file_name(const char *s) {
    return *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '\\');
}

static ss_status add_shard(ss_checkpoint *ck, const char *file) {
    char path[PATH_MAX];
    SS_TRY(ss_path_join(path, sizeof path, ck->dir, file));
    ss_safetensors **s = realloc(ck->shards, (ck->n_shards + 1) * sizeof *s);
    if (!s)
        return ss_fail(SS_ENOMEM, "%s: out of memory", path);
    ck->shards = s;
    SS_TRY(ss_safetensors_open(path, &ck->shards[ck->n_shards]));
    ck->n_shards++;
    return SS_OK;
}

/* Shard file name of a full shard path (the part after the last '/'). */
static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens the distinct shards named by weight_map, in sorted name order. */
static ss_status open_index_shards(ss_checkpoint *ck, const char *ipath, json_t *map) {
    size_t n = json_object_size(map), k = 0;
    const char **files = malloc((n ? n : 1) * sizeof *files);
    if (!files)
        return ss_fail(SS_ENOMEM, "%s: out of memory", ipath);
    ss_status s = SS_OK;
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v) {
        if (!json_is_string(v)) {
            s = ss_fail(SS_EFORMAT, "%s: weight_map '%s' must be a shard file name, found a non-string",
                        ipath, name);
            goto done;
        }
        const char *f = json_string_value(v);
        if (!plain_file_name(f)) {
            s = ss_fail(SS_EFORMAT, "%s: weight_map '%s' names shard '%s': expected a plain file name in the checkpoint directory",
                        ipath, name, f);
            goto done;
        }
        files[k++] = f;
    }
    qsort(files, k, sizeof *files, cmp_str);
    for (size_t i = 0; i < k && s == SS_OK; i++)
        if (i == 0 || strcmp(files[i], files[i - 1]))
            s = add_shard(ck, files[i]);
done:
    free(files);
    return s;
}

/* Every shard tensor is in the index under its shard; the count check then
 * makes the two sets equal. */
static ss_status check_index(ss_checkpoint *ck, const char *ipath, json_t *map) {
    for (size_t i = 0; i < ck->n; i++) {
        const ss_st_entry *e = ck->by_name[i];
        if (i > 0 && strcmp(e->name, ck->by_name[i - 1]->name) == 0)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s' appears in two shards: %s and %s", ck->dir, e->name,
                           base_name(ck->by_name[i - 1]->file), base_name(e->file));
        json_t *f = json_object_get(map, e->name);
        if (!f)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s' of shard %s is not listed in the index", ipath,
                           e->name, base_name(e->file));
        if (strcmp(json_string_value(f), base_name(e->file)))
            return ss_fail(SS_EFORMAT, "%s: tensor '%s' is in shard %s but the index maps it to %s", ipath,
                           e->name, base_name(e->file), json_string_value(f));
    }
    if (json_object_size(map) != ck->n) {
        const char *name;
        json_t *v;
        json_object_foreach(map, name, v) {
            const ss_st_entry key = {.name = name}, *kp = &key;
            if (!bsearch(&kp, ck->by_name, ck->n, sizeof *ck->by_name, cmp_entry_name))
                return ss_fail(SS_EFORMAT, "%s: index names tensor '%s' in shard %s, which does not hold it",
                               ipath, name, json_string_value(v));
        }
    }
    return SS_OK;
}

static ss_status collect_entries(ss_checkpoint *ck) {
    size_t n = 0;
    for (size_t i = 0; i < ck->n_shards; i++)
        n += ss_safetensors_count(ck->shards[i]);
    ck->entries = malloc((n ? n : 1) * sizeof *ck->entries);
    ck->by_name = malloc((n ? n : 1) * sizeof *ck->by_name);
    if (!ck->entries || !ck->by_name)
        return ss_fail(SS_ENOMEM, "%s: out of memory for %zu tensors", ck->dir, n);
    for (size_t i = 0; i < ck->n_shards; i++)
        for (size_t j = 0; j < ss_safetensors_count(ck->shards[i]); j++)
            ck->entries[ck->n++] = ss_safetensors_entry(ck->shards[i], j);
    if (ck->config.quant_source == SS_QUANT_SOURCE_COMPRESSED_TENSORS)
        SS_TRY(ss_ct_map_entries(ck->dir, ck->entries, ck->n, &ck->mapped, &ck->n_mapped));
    memcpy(ck->by_name, ck->entries, n * sizeof *ck->entries);
    qsort(ck->by_name, n, sizeof *ck->by_name, cmp_entry_name);
    return SS_OK;
}

static ss_status open_sharded(ss_checkpoint *ck, const char *ipath) {
    char *text = NULL;
    size_t len;
    json_t *root = NULL;
    SS_TRY(ss_read_file(ipath, SS_INDEX_MAX, &text, &len));
    ss_status s = SS_OK;
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s = ss_fail(SS_EFORMAT, "%s: invalid JSON at line %d column %d: %s", ipath, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        s = ss_fail(SS_EFORMAT, "%s: expected an object 'weight_map' {tensor: shard file}", ipath);
        goto done;
    }
    if ((s = open_index_shards(ck, ipath, map)) != SS_OK || (s = collect_entries(ck)) != SS_OK)
        goto done;
    s = check_index(ck, ipath, map);
done:
    json_decref(root);
    free(text);
    return s;
}

ss_status ss_checkpoint_open(const char *dir, ss_checkpoint **out) {
    *out = NULL;
    char path[PATH_MAX];
    size_t len;
    struct stat st;
    if (stat(dir, &st) != 0)
        return ss_fail_errno(errno, "%s: cannot open checkpoint directory", dir);
    if (!S_ISDIR(st.st_mode))
        return ss_fail(SS_EINVAL, "%s: not a directory", dir);
    ss_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = strdup(dir))) {
        free(ck);
        return ss_fail(SS_ENOMEM, "%s: out of memory", dir);
    }
    ss_status s;
    if ((s = ss_path_join(path, sizeof path, dir, "config.json")) != SS_OK)
        goto fail;
    if (!file_exists(path)) {
        s = ss_fail(SS_EFORMAT, "%s: no config.json", dir);
        goto fail;
    }
    if ((s = ss_read_file(path, (size_t)16 << 20, &ck->config_json, &len)) != SS_OK ||
        (s = ss_model_config_parse(ck->config_json, len, path, &ck->config)) != SS_OK)
        goto fail;
    if ((s = ss_path_join(path, sizeof path, dir, "model.safetensors")) != SS_OK)
        goto fail;
    /* A single file wins over an index, as in Hugging Face's loader. */
    if (file_exists(path)) {
        if ((s = add_shard(ck, "model.safetensors")) != SS_OK || (s = collect_entries(ck)) != SS_OK)
            goto fail;
    } else {
        if ((s = ss_path_join(path, sizeof path, dir, "model.safetensors.index.json")) != SS_OK)
            goto fail;
        if (!file_exists(path)) {
            s = ss_fail(SS_EFORMAT, "%s: no model.safetensors or model.safetensors.index.json", dir);
            goto fail;
        }
        if ((s = open_sharded(ck, path)) != SS_OK)
            goto fail;
    }
    *out = ck;
    return SS_OK;
fail:
    ss_checkpoint_close(ck);
    return s;
}

void ss_checkpoint_close(ss_checkpoint *ck) {
    if (!ck)
        return;
    for (size_t i = 0; i < ck->n_shards; i++)
        ss_safetensors_close(ck->shards[i]);
    free(ck->shards);
    free(ck->entries);
    free(ck->by_name);
    ss_ct_free(ck->mapped, ck->n_mapped);
    free(ck->config_json);
    free(ck->dir);
    free(ck);
}

const ss_model_config *ss_checkpoint_config(const ss_checkpoint *ck) { return &ck->config; }
const char *ss_checkpoint_dir(const ss_checkpoint *ck) { return ck->dir; }
const char *ss_checkpoint_config_json(const ss_checkpoint *ck) { return ck->config_json; }
size_t ss_checkpoint_count(const ss_checkpoint *ck) { return ck->n; }

const ss_st_entry *ss_checkpoint_entry(const ss_checkpoint *ck, size_t i) {
    return i < ck->n ? ck->entries[i] : NULL;
}

const ss_st_entry *ss_checkpoint_find(const ss_checkpoint *ck, const char *name) {
    const ss_st_entry key = {.name = name}, *kp = &key;
    const ss_st_entry **hit = bsearch(&kp, ck->by_name, ck->n, sizeof *ck->by_name, cmp_entry_name);
    return hit ? *hit : NULL;
}
