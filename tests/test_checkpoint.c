/* Checkpoint directories: single file and sharded with an index, and the ways
 * an index can lie (missing shard, missing or unlisted tensor, a tensor in two
 * shards, shard names that escape the directory); atomic output directories
 * and what keeps them from touching anything else (no replacement without
 * force, the sweep of killed runs' leftovers, outputs vs inputs, the signal
 * cleanup registry). */
#include "support/ss_test.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/cleanup.h"
#include "io/fileutil.h"

static const char *config =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}";

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ss_test_write_file(path, text, strlen(text));
}

/* A shard holding tensors names[0..n-1], each F32 [2, 3] filled with a value
 * derived from its name's first bytes. */
static void write_shard(const char *dir, const char *file, const char *const *names, int n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    ss_st_writer *w;
    const int64_t shape[2] = {2, 3};
    assert_ok(ss_st_writer_open(path, &w));
    for (int i = 0; i < n; i++)
        assert_ok(ss_st_writer_declare(w, names[i], SS_DTYPE_F32, 2, shape));
    for (int i = 0; i < n; i++) {
        float v[6];
        for (int k = 0; k < 6; k++)
            v[k] = (float)(names[i][0] * 100 + (int)strlen(names[i]) * 10 + k);
        assert_ok(ss_st_writer_write(w, v, sizeof v));
    }
    assert_ok(ss_st_writer_close(w));
}

static const char *const shard1[] = {"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight"};
static const char *const shard2[] = {"model.layers.1.mlp.down_proj.weight", "lm_head.weight", "model.norm.weight"};

static const char *good_index =
    "{\"metadata\":{\"total_size\":120},\"weight_map\":{"
    "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
    "\"model.layers.0.mlp.down_proj.weight\":\"model-00001-of-00002.safetensors\","
    "\"model.layers.1.mlp.down_proj.weight\":\"model-00002-of-00002.safetensors\","
    "\"lm_head.weight\":\"model-00002-of-00002.safetensors\","
    "\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}";

static void make_sharded(const char *dir) {
    write_text(dir, "config.json", config);
    write_shard(dir, "model-00001-of-00002.safetensors", shard1, 2);
    write_shard(dir, "model-00002-of-00002.safetensors", shard2, 3);
    write_text(dir, "model.safetensors.index.json", good_index);
}

static void check_tensor(const ss_checkpoint *ck, const char *name) {
    const ss_st_entry *e = ss_checkpoint_find(ck, name);
    assert_non_null(e);
    assert_string_equal(e->name, name);
    assert_int_equal(e->dtype, SS_DTYPE_F32);
    assert_int_equal(e->nbytes, 24);
    const float *v = e->data;
    assert_true(v[5] == (float)(name[0] * 100 + (int)strlen(name) * 10 + 5));
}

static void test_single_file(void **state) {
    char dir[256];
    ss_test_tmpdir(dir, sizeof dir);
    write_text(dir, "config.json", config);
    write_shard(dir, "model.safetensors", shard2, 3);
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(dir, &ck));
    assert_int_equal(ss_checkpoint_config(ck)->arch, SS_ARCH_LLAMA);
    assert_string_equal(ss_checkpoint_dir(ck), dir);
    assert_string_equal(ss_checkpoint_config_json(ck), config);
    assert_int_equal(ss_checkpoint_count(ck), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(ss_checkpoint_entry(ck, (size_t)i)->name, shard2[i]);
        check_tensor(ck, shard2[i]);
    }
    assert_null(ss_checkpoint_entry(ck, 3));
    assert_null(ss_checkpoint_find(ck, "model.embed_tokens.weight"));
    ss_checkpoint_close(ck);
    ss_test_rmtree(dir);
}

static void test_sharded(void **state) {
    char dir[256];
    ss_test_tmpdir(dir, sizeof dir);
    make_sharded(dir);
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(dir, &ck));
    assert_int_equal(ss_checkpoint_count(ck), 5);
    for (int i = 0; i < 2; i++)
        check_tensor(ck, shard1[i]);
    for (int i = 0; i < 3; i++)
        check_tensor(ck, shard2[i]);
    assert_true(strstr(ss_checkpoint_find(ck, "lm_head.weight")->file, "model-00002-of-00002") != NULL);
    ss_checkpoint_close(ck);
    ss_test_rmtree(dir);
}

/* Replaces one substring of the good index and expects open to fail. */
static void check_bad_index(const char *from, const char *to, ss_status st, const char *needle) {
    char dir[256], idx[2048];
    ss_test_tmpdir(dir, sizeof dir);
    make_sharded(dir);
    const char *at = strstr(good_index, from);
    assert_non_null(at);
    snprintf(idx, sizeof idx, "%.*s%s%s", (int)(at - good_index), good_index, to, at + strlen(from));
    write_text(dir, "model.safetensors.index.json", idx);
    ss_checkpoint *ck = NULL;
    assert_fails(ss_checkpoint_open(dir, &ck), st, needle);
    assert_null(ck);
    ss_test_rmtree(dir);
}

static void test_bad_indexes(void **state) {
    /* A tensor the index lists but no shard holds. */
    check_bad_index("\"lm_head.weight\"", "\"lm_head.weight\":\"model-00002-of-00002.safetensors\",\"ghost.weight\"",
                    SS_EFORMAT, "'ghost.weight'");
    /* A tensor a shard holds but the index omits. */
    check_bad_index("\"model.norm.weight\":\"model-00002-of-00002.safetensors\"",
                    "\"x\":\"model-00002-of-00002.safetensors\"", SS_EFORMAT, "'model.norm.weight' of shard");
    /* Mapped to the wrong shard. */
    check_bad_index("\"lm_head.weight\":\"model-00002", "\"lm_head.weight\":\"model-00001", SS_EFORMAT,
                    "index maps it to model-00001");
    /* Missing shard file. */
    check_bad_index("\"model.norm.weight\":\"model-00002-of-00002.safetensors\"",
                    "\"model.norm.weight\":\"model-00003-of-00003.safetensors\"", SS_EIO, "model-00003-of-00003");
    /* Shard names that leave the directory. */
    check_bad_index("\"lm_head.weight\":\"model-00002-of-00002.safetensors\"", "\"lm_head.weight\":\"../x\"",
                    SS_EFORMAT, "'../x'");
    check_bad_index("\"lm_head.weight\":\"model-00002-of-00002.safetensors\"", "\"lm_head.weight\":\"/etc/passwd\"",
                    SS_EFORMAT, "plain file name");
    check_bad_index("\"lm_head.weight\":\"model-00002-of-00002.safetensors\"", "\"lm_head.weight\":\"..\"",
                    SS_EFORMAT, "plain file name");
    /* Broken index files. */
    check_bad_index("\"weight_map\"", "\"weights\"", SS_EFORMAT, "weight_map");
    check_bad_index("{\"metadata\"", "[{\"metadata\"", SS_EFORMAT, "invalid JSON");
    check_bad_index("\"lm_head.weight\":\"model-00002-of-00002.safetensors\"", "\"lm_head.weight\":7",
                    SS_EFORMAT, "non-string");
}

static void test_duplicate_across_shards(void **state) {
    char dir[256];
    ss_test_tmpdir(dir, sizeof dir);
    make_sharded(dir);
    const char *const dup[] = {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                               "model.layers.1.mlp.down_proj.weight"};
    write_shard(dir, "model-00002-of-00002.safetensors", dup, 4);
    ss_checkpoint *ck = NULL;
    assert_fails(ss_checkpoint_open(dir, &ck), SS_EFORMAT, "appears in two shards");
    ss_test_rmtree(dir);
}

static void test_missing_pieces(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    ss_checkpoint *ck = NULL;
    assert_fails(ss_checkpoint_open(dir, &ck), SS_EFORMAT, "no config.json");
    write_text(dir, "config.json", config);
    assert_fails(ss_checkpoint_open(dir, &ck), SS_EFORMAT, "no model.safetensors");
    write_text(dir, "model.safetensors", "garbage");
    assert_fails(ss_checkpoint_open(dir, &ck), SS_EFORMAT, "too short");
    write_text(dir, "config.json", "{\"architectures\":[\"GPT2LMHeadModel\"]}");
    assert_fails(ss_checkpoint_open(dir, &ck), SS_EUNSUPPORTED, "GPT2LMHeadModel");
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_fails(ss_checkpoint_open(path, &ck), SS_EINVAL, "not a directory");
    snprintf(path, sizeof path, "%s/nope", dir);
    assert_fails(ss_checkpoint_open(path, &ck), SS_EIO, "nope");
    assert_null(ck);
    ss_test_rmtree(dir);
}

// --- atomic output directories ------------------------------------------------------------

static void test_outdir(void **state) {
    char dir[256], final[512], tmp[600], f[700];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(final, sizeof final, "%s/out", dir);

    assert_ok(ss_outdir_begin(final, 0, NULL, tmp, sizeof tmp));
    assert_true(strstr(tmp, "/out.tmp.") != NULL);
    assert_false(ss_test_exists(final));
    snprintf(f, sizeof f, "%s/sub", tmp);
    assert_int_equal(mkdir(f, 0755), 0);
    snprintf(f, sizeof f, "%s/sub/a.txt", tmp);
    ss_test_write_file(f, "new", 3);
    assert_ok(ss_outdir_commit(tmp, final, 0));
    assert_false(ss_test_exists(tmp));
    snprintf(f, sizeof f, "%s/sub/a.txt", final);
    assert_true(ss_test_exists(f));

    /* Exists: refused without force, and nothing is created. */
    assert_fails(ss_outdir_begin(final, 0, NULL, tmp, sizeof tmp), SS_EEXIST, "--force");
    assert_false(ss_test_exists(tmp));

    /* Abort removes the whole temporary tree and keeps the old output. */
    assert_ok(ss_outdir_begin(final, 1, NULL, tmp, sizeof tmp));
    snprintf(f, sizeof f, "%s/partial.safetensors", tmp);
    ss_test_write_file(f, "x", 1);
    ss_outdir_abort(tmp);
    assert_false(ss_test_exists(tmp));
    snprintf(f, sizeof f, "%s/sub/a.txt", final);
    assert_true(ss_test_exists(f));

    /* Force replaces the old directory entirely. */
    assert_ok(ss_outdir_begin(final, 1, NULL, tmp, sizeof tmp));
    snprintf(f, sizeof f, "%s/b.txt", tmp);
    ss_test_write_file(f, "b", 1);
    assert_ok(ss_outdir_commit(tmp, final, 1));
    snprintf(f, sizeof f, "%s/b.txt", final);
    assert_true(ss_test_exists(f));
    snprintf(f, sizeof f, "%s/sub", final);
    assert_false(ss_test_exists(f));
    assert_false(ss_test_exists(tmp));

    /* Temporary name too long for the caller's buffer. */
    char small[8];
    assert_fails(ss_outdir_begin("/tmp/some-new-dir", 0, NULL, small, sizeof small), SS_EINVAL, "too long");
    ss_outdir_abort(NULL);
    ss_test_rmtree(dir);
}


/* A target that appears between begin and commit is never replaced without
 * force; the temporary output stays for abort. */
static void test_outdir_no_replace(void **state) {
    char dir[256], final[512], tmp[600], f[700];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(final, sizeof final, "%s/out/", dir); /* a trailing slash is the same output */
    assert_ok(ss_outdir_begin(final, 0, NULL, tmp, sizeof tmp));
    assert_non_null(strstr(tmp, "/out.tmp."));
    snprintf(f, sizeof f, "%s/out", dir);
    assert_int_equal(mkdir(f, 0755), 0);
    snprintf(f, sizeof f, "%s/out/theirs.txt", dir);
    ss_test_write_file(f, "theirs", 6);
    assert_fails(ss_outdir_commit(tmp, final, 0), SS_EEXIST, "already exists");
    assert_true(ss_test_exists(tmp));
    assert_true(ss_test_exists(f));
    ss_outdir_abort(tmp);
    assert_false(ss_test_exists(tmp));
    /* an empty folder is someone's too */
    ss_test_rmtree(f);
    assert_ok(ss_outdir_begin(final, 1, NULL, tmp, sizeof tmp));
    assert_fails(ss_outdir_commit(tmp, final, 0), SS_EEXIST, "already exists");
    assert_ok(ss_outdir_commit(tmp, final, 1));
    assert_false(ss_test_exists(tmp));
    /* --force replaces an earlier output (it holds the marker) or an empty
     * folder, never an unrelated one */
    snprintf(f, sizeof f, "%s/out/notes.txt", dir);
    ss_test_write_file(f, "mine", 4);
    assert_fails(ss_outdir_begin(final, 1, "config.json", tmp, sizeof tmp), SS_EEXIST,
                 "not an earlier output (no config.json in it)");
    assert_false(ss_test_exists(tmp));
    snprintf(f, sizeof f, "%s/out/config.json", dir);
    ss_test_write_file(f, "{}", 2);
    assert_ok(ss_outdir_begin(final, 1, "config.json", tmp, sizeof tmp));
    ss_outdir_abort(tmp);
    snprintf(f, sizeof f, "%s/file", dir);
    ss_test_write_file(f, "x", 1);
    assert_fails(ss_outdir_begin(f, 1, "config.json", tmp, sizeof tmp), SS_EEXIST, "not a folder");
    assert_fails(ss_outdir_begin(".", 1, NULL, tmp, sizeof tmp), SS_EINVAL, "name a new folder");
    assert_fails(ss_outdir_begin("a/..", 1, NULL, tmp, sizeof tmp), SS_EINVAL, "name a new folder");
    ss_test_rmtree(dir);
}

static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

/* begin sweeps what killed runs left: temporaries of dead pids go; a live
 * process's stay, and so does anything else (a copy moved aside may be the
 * only one left of an output). */
static void test_sweep(void **state) {
    char dir[256], final[512], tmp[600], a[700], b[800], c[700];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(final, sizeof final, "%s/ck", dir);
    long dead = dead_pid();
    snprintf(a, sizeof a, "%s.tmp.%ld", final, dead);
    assert_int_equal(mkdir(a, 0755), 0);
    snprintf(b, sizeof b, "%s/x", a);
    ss_test_write_file(b, "x", 1);
    snprintf(b, sizeof b, "%s.tmp.%ld", final, (long)getppid()); /* alive */
    assert_int_equal(mkdir(b, 0755), 0);
    snprintf(c, sizeof c, "%s.old.%ld", final, dead);
    assert_int_equal(mkdir(c, 0755), 0);
    assert_ok(ss_outdir_begin(final, 0, NULL, tmp, sizeof tmp));
    assert_false(ss_test_exists(a));
    assert_true(ss_test_exists(b));
    assert_true(ss_test_exists(c));
    ss_outdir_abort(tmp);
    /* a file of the same form is swept too: the atomic files' temporaries */
    snprintf(a, sizeof a, "%s/table.json.tmp.%ld", dir, dead);
    ss_test_write_file(a, "{", 1);
    snprintf(b, sizeof b, "%s/table.json", dir);
    assert_ok(ss_write_file_atomic(b, "{}", 2));
    assert_false(ss_test_exists(a));
    /* a sweep never wipes the text of an earlier failure its caller carries */
    assert_fails(ss_outdir_begin("", 0, NULL, tmp, sizeof tmp), SS_EINVAL, "empty path");
    ss_sweep_stale(b);
    assert_ok(ss_outdir_check_input("/no/such/out", "/no/such/in", 1));
    assert_string_equal(ss_last_error(), "output directory: empty path");
    ss_test_rmtree(dir);
}

static void test_path_relations(void **state) {
    char dir[256], in[512], out[800], link[600], abs_a[PATH_MAX];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(in, sizeof in, "%s/model", dir);
    assert_int_equal(mkdir(in, 0755), 0);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink("model", link), 0);
    ss_path_relation rel;
    snprintf(out, sizeof out, "%s/./not/../model/", dir);
    assert_ok(ss_path_relate(out, link, &rel, abs_a, NULL));
    assert_int_equal(rel, SS_PATHS_SAME);
    snprintf(out, sizeof out, "%s/new/deeper", link);
    assert_ok(ss_path_relate(out, in, &rel, NULL, NULL));
    assert_int_equal(rel, SS_PATHS_A_INSIDE_B);
    assert_ok(ss_path_relate(dir, link, &rel, NULL, NULL));
    assert_int_equal(rel, SS_PATHS_B_INSIDE_A);
    snprintf(out, sizeof out, "%s/model-INT8", dir); /* a common prefix is not a parent */
    assert_ok(ss_path_relate(out, in, &rel, NULL, NULL));
    assert_int_equal(rel, SS_PATHS_DISJOINT);

    assert_fails(ss_outdir_check_input(link, in, 1), SS_EINVAL, "is the input");
    assert_fails(ss_outdir_check_input(dir, in, 1), SS_EINVAL, "contains the input");
    assert_ok(ss_outdir_check_input(dir, in, 0)); /* files into fixed sub-folders */
    snprintf(out, sizeof out, "%s/results", in);
    assert_fails(ss_outdir_check_input(out, in, 0), SS_EINVAL, "inside the input");
    assert_ok(ss_outdir_check_input(out, "/no/such/input", 1));

    /* writable output folders, checked before any work */
    snprintf(out, sizeof out, "%s/file", dir);
    ss_test_write_file(out, "x", 1);
    assert_fails(ss_outdir_check_writable(out, "--out"), SS_EINVAL, "not a folder");
    snprintf(out, sizeof out, "%s/file/sub", dir);
    assert_fails(ss_outdir_check_writable(out, "--out"), SS_EINVAL, "--out");
    snprintf(out, sizeof out, "%s/new/deeper/", dir);
    assert_ok(ss_outdir_check_writable(out, "--out"));
    assert_false(ss_test_exists(out));
    ss_test_rmtree(dir);
}

/* mkdir -p reports what it made; after a failure exactly that is removed,
 * and only while empty. */
static void test_mkdir_made(void **state) {
    char dir[256], path[600], made[PATH_MAX], keep[700];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a/b/c/file.csv", dir);
    assert_ok(ss_mkdir_parents(path, made, sizeof made));
    snprintf(keep, sizeof keep, "%s/a", dir);
    assert_string_equal(made, keep);
    assert_ok(ss_mkdir_parents(path, made, sizeof made));
    assert_string_equal(made, "");
    snprintf(keep, sizeof keep, "%s/a/b/other.txt", dir);
    ss_test_write_file(keep, "x", 1);
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    snprintf(made, sizeof made, "%s/a", dir);
    ss_rmdir_made(path, made);
    assert_false(ss_test_exists(path));
    assert_true(ss_test_exists(keep)); /* a/b holds a file: a/b and a stay */
    ss_test_rmtree(dir);
}

/* What a signal handler does: every registered temporary output goes, the
 * folders made for them only when empty; a mapped range names its file. */
static void test_cleanup_registry(void **state) {
    char dir[256], tmp[600], made[600], f[700];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(made, sizeof made, "%s/root", dir);
    snprintf(tmp, sizeof tmp, "%s/root/out.tmp.1", dir);
    assert_ok(ss_mkdir_p(tmp, NULL, 0));
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s/sub%d", tmp, i);
        assert_int_equal(mkdir(f, 0755), 0);
        snprintf(f, sizeof f, "%s/sub%d/shard.safetensors", tmp, i);
        ss_test_write_file(f, "x", 1);
    }
    int a = ss_cleanup_add(tmp, SS_CLEANUP_TREE), b = ss_cleanup_add(made, SS_CLEANUP_EMPTY_DIRS);
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(ss_cleanup_on_signal(SIGTERM), 1);
    assert_false(ss_test_exists(tmp));
    assert_false(ss_test_exists(made));
    ss_cleanup_del(a);
    ss_cleanup_del(b);
    /* a folder made for an output that holds someone's file stays */
    snprintf(f, sizeof f, "%s/theirs.txt", made);
    assert_ok(ss_mkdir_parents(f, NULL, 0));
    ss_test_write_file(f, "x", 1);
    b = ss_cleanup_add(made, SS_CLEANUP_EMPTY_DIRS);
    ss_cleanup_now();
    assert_true(ss_test_exists(f));
    ss_cleanup_del(b);
    /* during a hold nothing is removed; the signal is raised at release */
    assert_int_equal(mkdir(tmp, 0755), 0);
    a = ss_cleanup_add(tmp, SS_CLEANUP_TREE);
    signal(SIGUSR1, SIG_IGN);
    ss_cleanup_hold();
    assert_int_equal(ss_cleanup_on_signal(SIGUSR1), 0);
    assert_true(ss_test_exists(tmp));
    ss_cleanup_release();
    ss_cleanup_del(a);
    static const char mapped[64] = "";
    int m = ss_cleanup_add_map(mapped, sizeof mapped, "shard.safetensors");
    assert_string_equal(ss_cleanup_mapped_file(mapped + 63), "shard.safetensors");
    assert_null(ss_cleanup_mapped_file(mapped + 64));
    ss_cleanup_del(m);
    assert_null(ss_cleanup_mapped_file(mapped));
    ss_test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_file),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_bad_indexes),
        cmocka_unit_test(test_duplicate_across_shards),
        cmocka_unit_test(test_missing_pieces),
        cmocka_unit_test(test_outdir),
        cmocka_unit_test(test_outdir_no_replace),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_path_relations),
        cmocka_unit_test(test_mkdir_made),
        cmocka_unit_test(test_cleanup_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
