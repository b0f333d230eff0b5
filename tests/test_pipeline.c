/* run-all pieces without running a benchmark: the status JSON (round trip,
 * atomic rewrite, malformed files), the resume rule, the config file and the
 * list parsers (one-line errors), and the report generated from a small
 * fabricated results folder (the test checks the generator, not the numbers). */
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <jansson.h>
#include <unistd.h>

#include "ss_test.h"

static void fill_status(ss_pipe_status *st, const char *out) {
    memset(st, 0, sizeof *st);
    ss_pipe_config_default(&st->config, 0);
    snprintf(st->config.out, sizeof st->config.out, "%s", out);
    snprintf(st->name, sizeof st->name, "run_all");
    snprintf(st->stamp, sizeof st->stamp, "20260102_030405");
    snprintf(st->log, sizeof st->log, "run_all_20260102_030405.log");
    snprintf(st->started, sizeof st->started, "2026-01-02T03:04:05");
    st->total_seconds = 12.5;
    st->quick = st->embedded = 1;
    snprintf(st->key.gpu, sizeof st->key.gpu, "Test GPU, 80GB");
    st->key.cc = 90;
    snprintf(st->key.cublaslt, sizeof st->key.cublaslt, "130100");
    snprintf(st->key.cusparselt, sizeof st->key.cusparselt, "0.8.0");
    snprintf(st->key.toolchain, sizeof st->key.toolchain, "cuda13.0");
    snprintf(st->describe, sizeof st->describe, "Test GPU \"quoted\"");
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        st->tasks[k].task = k;
        st->tasks[k].state = SS_TASK_DONE;
        st->tasks[k].seconds = k * 1.25;
        st->tasks[k].n_done = k;
    }
    st->tasks[3].state = SS_TASK_SKIPPED;
    snprintf(st->tasks[3].reason, sizeof st->tasks[3].reason, "no tuning wanted here");
    st->tasks[5].state = SS_TASK_FAILED;
    snprintf(st->tasks[5].error, sizeof st->tasks[5].error, "SS_ENOSPC: out.csv: No space left on device");
    st->tasks[6].n_notes = 1;
    snprintf(st->tasks[6].notes[0], sizeof st->tasks[6].notes[0], "skipped: FP8 needs compute capability >= 8.9");
    st->n_ckpts = 1;
    snprintf(st->ckpts[0].role, sizeof st->ckpts[0].role, "base");
    snprintf(st->ckpts[0].path, sizeof st->ckpts[0].path, "%s/checkpoints/X-BF16", out);
    snprintf(st->ckpts[0].origin, sizeof st->ckpts[0].origin, "synthesized (random weights, exact configuration)");
    st->tune_tuned = 7;
}

static void test_status_round_trip(void **state) {
    (void)state;
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    ss_pipe_status *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    fill_status(a, dir);
    snprintf(path, sizeof path, "%s/run_all_20260102_030405_status.json", dir);
    assert_ok(ss_pipe_status_save(a, path));
    assert_ok(ss_pipe_status_load(path, b));
    assert_string_equal(b->stamp, a->stamp);
    assert_string_equal(b->key.gpu, a->key.gpu);
    assert_string_equal(b->describe, a->describe);
    assert_int_equal(b->key.cc, 90);
    assert_true(b->embedded && b->quick);
    assert_true(b->total_seconds == a->total_seconds);
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        assert_int_equal(b->tasks[k].state, a->tasks[k].state);
        assert_int_equal(b->tasks[k].n_done, a->tasks[k].n_done);
        assert_true(b->tasks[k].seconds == a->tasks[k].seconds);
    }
    assert_string_equal(b->tasks[3].reason, a->tasks[3].reason);
    assert_string_equal(b->tasks[5].error, a->tasks[5].error);
    assert_string_equal(b->tasks[6].notes[0], a->tasks[6].notes[0]);
    assert_string_equal(b->ckpts[0].origin, a->ckpts[0].origin);
    /* the config survives too, lists included */
    assert_int_equal(b->config.n_sparsity8, a->config.n_sparsity8);
    assert_true(ss_pattern_is_inf(b->config.sparsity8[3]));
    assert_int_equal(b->config.n_decode, a->config.n_decode);
    assert_int_equal(b->config.m_decode[1], a->config.m_decode[1]);
    assert_int_equal(b->tune_tuned, 7);

    /* rewrite: replaced in place, no temporary left; a failing save keeps the old file */
    a->tasks[1].state = SS_TASK_RUNNING;
    assert_ok(ss_pipe_status_save(a, path));
    assert_ok(ss_pipe_status_load(path, b));
    assert_int_equal(b->tasks[1].state, SS_TASK_RUNNING);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/x_status.json", dir);
    assert_true(ss_pipe_status_save(a, bad) != SS_OK);

    /* the newest stamp wins */
    snprintf(path, sizeof path, "%s/run_all_20251231_235959_status.json", dir);
    assert_ok(ss_pipe_status_save(a, path));
    char found[600];
    assert_ok(ss_pipe_status_find(dir, found, sizeof found));
    assert_non_null(strstr(found, "20260102_030405"));
    ss_test_rmtree(dir);
    free(a);
    free(b);
}

static void test_status_malformed(void **state) {
    (void)state;
    ss_pipe_status *st = calloc(1, sizeof *st);
    const char *bad[] = {
        "[]",
        "{\"format\": \"other\", \"version\": 1}",
        "{\"format\": \"slidesparse-run-all\", \"version\": 2}",
        "{\"format\": \"slidesparse-run-all\", \"version\": 1, \"name\": 3}",
        "{\"format\": \"slidesparse-run-all\", \"version\": 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_fails(ss_pipe_status_parse(bad[i], strlen(bad[i]), "s.json", st), SS_EFORMAT, "s.json");
    /* a valid file with one task state changed to junk */
    char dir[256];
    ss_test_tmpdir(dir, sizeof dir);
    fill_status(st, dir);
    char *text = NULL;
    assert_ok(ss_pipe_status_dump(st, &text));
    char *p = strstr(text, "\"state\": \"failed\"");
    assert_non_null(p);
    memcpy(p + 9, "\"frozen\"", 8);
    assert_fails(ss_pipe_status_parse(text, strlen(text), "s.json", st), SS_EFORMAT, "unknown state \"frozen\"");
    free(text);
    ss_test_rmtree(dir);
    free(st);
}

/* A status written before task 9 existed (8 tasks, none of them 9) loads:
 * task 9 is skipped as not part of that run, so --resume does not start it. */
static void test_status_before_task9(void **state) {
    (void)state;
    ss_pipe_status *st = calloc(1, sizeof *st);
    fill_status(st, "/tmp");
    char *text = NULL;
    assert_ok(ss_pipe_status_dump(st, &text));
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 9);
    json_array_remove(json_object_get(j, "tasks"), 8);
    json_t *tasks = json_array();
    for (int k = 1; k <= 8; k++)
        json_array_append_new(tasks, json_integer(k));
    json_object_set_new(json_object_get(j, "config"), "tasks", tasks);
    text = json_dumps(j, 0);
    json_decref(j);
    assert_ok(ss_pipe_status_parse(text, strlen(text), "s.json", st));
    assert_int_equal(st->tasks[9].state, SS_TASK_SKIPPED);
    assert_false(st->config.tasks[9]);
    ss_pipe_status_prepare_resume(st);
    assert_int_equal(st->tasks[9].state, SS_TASK_SKIPPED);
    free(text);
    free(st);
}

static void test_resume_rule(void **state) {
    (void)state;
    ss_pipe_status *st = calloc(1, sizeof *st);
    fill_status(st, "/tmp");
    st->tasks[4].state = SS_TASK_RUNNING;
    st->tasks[4].n_done = 3;
    st->tasks[7].state = SS_TASK_PENDING;
    ss_pipe_status_prepare_resume(st);
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        ss_task_state want = k == 3 ? SS_TASK_SKIPPED : (k == 4 || k == 5 || k == 7) ? SS_TASK_PENDING : SS_TASK_DONE;
        assert_int_equal(st->tasks[k].state, want);
    }
    /* redone from scratch: nothing of the interrupted attempt is kept */
    assert_int_equal(st->tasks[4].n_done, 0);
    assert_string_equal(st->tasks[5].error, "");
    assert_int_equal(st->tasks[2].n_done, 2);
    free(st);
}

static void test_config(void **state) {
    (void)state;
    ss_pipe_config c;
    ss_pipe_config_default(&c, 1);
    assert_string_equal(c.models[0], "bitnet-2b");
    assert_int_equal(c.n_prefill, 7);
    assert_int_equal(c.m_prefill[6], 32768);
    assert_int_equal(c.n_kernel, 9);
    assert_int_equal(c.n_sparsity8, 4);
    assert_int_equal(c.throughput_repeats, 3); /* GPU: three runs per prefill / decode point */
    ss_pipe_config emb;
    ss_pipe_config_default(&emb, 0);
    assert_int_equal(emb.throughput_repeats, 1); /* the embedded default keeps its CI time */
    const char *good = "{\"tasks\": [4, 5], \"models\": [\"tiny-llama\"], \"dtypes\": [\"fp8\"],"
                       " \"sparsity\": [\"2_8\"], \"m_decode\": [64], \"scale\": \"quick\", \"backend\": \"cpu\","
                       " \"warmup\": 3, \"throughput_repeats\": 5, \"kv_memory_mb\": 64}";
    assert_ok(ss_pipe_config_parse(good, strlen(good), "c.json", &c));
    assert_true(c.tasks[4] && c.tasks[5] && !c.tasks[1] && !c.tasks[8]);
    assert_string_equal(c.models[0], "tiny-llama");
    assert_int_equal(c.n_dtypes, 1);
    assert_int_equal(c.dtypes[0], SS_DTYPE_F8_E4M3);
    assert_int_equal(c.sparsity[0].l, 8);
    assert_int_equal(c.n_decode, 1);
    assert_true(c.quick);
    assert_int_equal(c.backend, 2);
    assert_int_equal(c.warmup, 3);
    assert_int_equal(c.throughput_repeats, 5);
    /* the dump parses back to the same config */
    char *text = NULL;
    assert_ok(ss_pipe_config_dump(&c, &text));
    ss_pipe_config d;
    ss_pipe_config_default(&d, 1);
    assert_ok(ss_pipe_config_parse(text, strlen(text), "dump", &d));
    free(text);
    assert_int_equal(memcmp(d.tasks, c.tasks, sizeof c.tasks), 0);
    assert_string_equal(d.models[0], c.models[0]);
    assert_int_equal(d.m_decode[0], 64);
    assert_int_equal(d.throughput_repeats, 5);

    struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"tasks\": [0]}", "\"tasks\"[0]: expected an integer in 1..9"},
        {"{\"tasks\": \"1\"}", "\"tasks\": expected a non-empty array"},
        {"{\"models\": [\"gpt\"]}", "unknown model 'gpt'"},
        {"{\"dtypes\": [\"int4\"]}", "unknown dtype 'int4'"},
        {"{\"sparsity\": [\"2_7\"]}", "unknown pattern '2_7'"},
        {"{\"sparsity\": [\"2_inf\"]}", "unknown pattern '2_inf'"},
        {"{\"warmup\": 1.5}", "\"warmup\": expected an integer"},
        {"{\"throughput_repeats\": 0}", "\"throughput_repeats\": expected an integer in 1..16"},
        {"{\"throughput_repeats\": 17}", "\"throughput_repeats\": expected an integer in 1..16"},
        {"{\"throughput_repeats\": \"3\"}", "\"throughput_repeats\": expected an integer in 1..16"},
        {"{\"scale\": \"huge\"}", "\"scale\": expected \"quick\" or \"full\""},
        {"{\"out\": 5}", "\"out\": expected a non-empty string"},
        {"{\"tune_stages\": [\"none\"]}", "tune_stages"},
        {"{\"speed\": 1}", "unknown key \"speed\""},
        {"{\"dtypes\": [\"int8\"], \"dtypes\": [\"fp8\"]}", "c.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ss_pipe_config e = c;
        assert_fails(ss_pipe_config_parse(bad[i].json, strlen(bad[i].json), "c.json", &e), SS_EFORMAT, bad[i].needle);
        /* a failed parse changes nothing */
        assert_int_equal(memcmp(&e, &c, sizeof c), 0);
    }
    assert_fails(ss_pipe_parse_tasks("1,,2", &c), SS_EINVAL, "--task");
    assert_fails(ss_pipe_parse_dtypes("int8,int8", &c), SS_EINVAL, "given twice");
    assert_fails(ss_pipe_parse_sparsity("2_4,2_4", &c), SS_EINVAL, "given twice");
    assert_ok(ss_pipe_parse_tasks("8,1", &c));
    assert_true(c.tasks[1] && c.tasks[8] && !c.tasks[4]);

    /* checks: output folder that cannot exist, decode M off the SPEC list */
    char dir[256];
    ss_test_tmpdir(dir, sizeof dir);
    ss_pipe_config_default(&c, 0);
    snprintf(c.out, sizeof c.out, "%s/f/out", dir);
    char f[300];
    snprintf(f, sizeof f, "%s/f", dir);
    ss_test_write_file(f, "x", 1);
    assert_fails(ss_pipe_config_check(&c), SS_EINVAL, "cannot be created");
    snprintf(c.out, sizeof c.out, "%s/a/b", dir);
    assert_ok(ss_pipe_config_check(&c));
    c.m_decode[0] = 100;
    assert_fails(ss_pipe_config_check(&c), SS_EINVAL, "M 100");
    ss_test_rmtree(dir);
}

// --- the report from a fabricated folder ----------------------------------------------------------------

static void write_csv(const char *dir, const char *rel, const char *text) {
    char path[1024], cmd[1200];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    ss_test_write_file(path, text, strlen(text));
}

static void test_report(void **state) {
    (void)state;
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    ss_pipe_status *st = calloc(1, sizeof *st);
    fill_status(st, dir);
    snprintf(path, sizeof path, "%s/run_all_20260102_030405_status.json", dir);
    assert_ok(ss_pipe_status_save(st, path));
    const char *h = "M,prompt_len,max_num_seqs,num_prompts,N,output_len,requests_per_s,tokens_per_s,elapsed_time_s\n";
    char t[512];
    /* dense 100 / 400 tokens/s; 2_8 250 (2.5x) at M 512 and 200 (0.5x) at M 1024 */
    snprintf(t, sizeof t, "%s512,512,1,128,512,1,1.0,100.0,10.0\n1024,1024,1,128,1024,1,2.0,400.0,5.0\n", h);
    write_csv(dir, "throughput_benchmark_results/prefill/G_cc90_INT8_cuda13.0/cublaslt/M-X_prefill.csv", t);
    snprintf(t, sizeof t, "%s512,512,1,128,512,1,2.5,250.0,4.0\n1024,1024,1,128,1024,1,1.0,200.0,10.0\n", h);
    write_csv(dir, "throughput_benchmark_results/prefill/G_cc90_INT8_cuda13.0/cusparselt/2_8/M-X_prefill.csv", t);
    const char *kh = "gpu,cc,dtype,cublaslt,cusparselt,toolchain,model,proj,M,N,K,K_slid,backend,pattern,level,"
                     "latency_us,tops,speedup,ideal,slid_eff,alg_id,split_k,algo\n";
    snprintf(t, sizeof t, "%s\"G, 80GB\",90,INT8,1,2,c,M-X,total,64,10,10,10,cublaslt,dense,gemm,30.0,1,1,1,,,,\n", kh);
    write_csv(dir, "kernel_task7/benchmark_kernel/cuBLASLt/G_cc90_INT8_cuda13.0/M-X_total.csv", t);
    snprintf(t, sizeof t, "%s\"G, 80GB\",90,INT8,1,2,c,M-X,total,64,10,10,12,cusparselt,2_6,gemm,24.0,1,1,1.5,,,,\n", kh);
    write_csv(dir, "kernel_task7/benchmark_kernel/cuSPARSELt/G_cc90_INT8_cuda13.0/M-X_total.csv", t);
    /* task 9: rows in any order; the table puts dense first and the patterns by L */
    write_csv(dir, "accuracy/G_cc90_INT8_cuda13.0/M-X_perplexity.csv",
              "gpu,cc,dtype,toolchain,backend,model,pattern,tokens,context,stride,seed,mean_nll,perplexity,seconds\n"
              "G,90,INT8,c,cusparselt,M-X,2_8,254,128,128,1,2.4,11.0,0.1\n"
              "G,90,INT8,c,cublaslt,M-X,dense,254,128,128,1,2.3,10.0,0.1\n"
              "G,90,INT8,c,cusparselt,M-X,2_4,254,128,128,1,2.5,12.5,0.1\n");

    char report[1024];
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    assert_non_null(strstr(report, "Test_GPU__80GB_report_20260102.md"));
    size_t len = 0;
    char *md = ss_test_read_file(report, &len);
    assert_non_null(md);
    /* speedups computed from the CSVs: 250/100, 200/400, 30/24 */
    assert_non_null(strstr(md, "| 512 | 2_8 | 250.0 | 2.500 | 4.000 | 2.500 |"));
    assert_non_null(strstr(md, "| 1024 | 2_8 | 200.0 | 1.000 | 10.000 | 0.500 |"));
    assert_non_null(strstr(md, "| 64 | 30.0 | 1.250 (1.50) |"));
    assert_non_null(strstr(md, "best speedup 2.500 (2_8, G_cc90_INT8_cuda13.0, M 512); worst 0.500"));
    assert_non_null(strstr(md, "Sparsity wins in 1 of 2 measurements, loses in 1"));
    /* task table, skipped and failed lists come from the status */
    assert_non_null(strstr(md, "| 3 | tune GEMM algorithms (coarse + fine) | skipped | 3.8 |"));
    assert_non_null(strstr(md, "- task 3 (tune GEMM algorithms (coarse + fine)): no tuning wanted here"));
    assert_non_null(strstr(md, "- task 5 (decode throughput): SS_ENOSPC: out.csv: No space left on device"));
    assert_non_null(strstr(md, "- task 6: FP8 needs compute capability >= 8.9"));
    assert_non_null(strstr(md, "Synthetic weights were used"));
    assert_non_null(strstr(md, "Embedded no-GPU default"));
    assert_non_null(strstr(md, "| compute capability | 9.0 |"));
    /* accuracy: perplexity and its change against dense, per pattern */
    assert_non_null(strstr(md, "## Accuracy (task 9)"));
    assert_non_null(strstr(md, "**M-X INT8 on G** (254 token ids scored, windows of 128, seed 1)"));
    assert_non_null(strstr(md, "| dense | cublaslt | 10.0000 | — (baseline) | — |\n"
                               "| 2_4 | cusparselt | 12.5000 | +2.5000 | +25.00% |\n"
                               "| 2_8 | cusparselt | 11.0000 | +1.0000 | +10.00% |\n"));
    /* the summary comes first: one row per (stage, dtype, model), one column per pattern with its
     * ideal, the best speedup over M and where; then a verdict */
    char *sum = strstr(md, "## Summary"), *tasks = strstr(md, "## Tasks");
    assert_non_null(sum);
    assert_true(tasks && sum < tasks);
    assert_non_null(strstr(md, "| stage | dtype | model | 2_6 (ideal 1.50×) | 2_8 (ideal 1.33×) |\n"));
    assert_non_null(strstr(md, "| prefill | INT8 | M-X | — | **2.50×** (M 512) |\n"));
    assert_non_null(strstr(md, "| kernel GEMM only | INT8 | M-X | **1.25×** (M 64) | — |\n"));
    assert_non_null(strstr(md, "2_8 beats dense in 1 of 1 rows (best 2.50×, 188% of its ideal 1.33×: prefill, INT8, M 512)"));
    assert_non_null(strstr(md, "These are CPU reference numbers"));
    /* every point was measured once: no spread, no warning */
    assert_non_null(strstr(md, "No point was measured more than once"));
    assert_null(strstr(md, "machine was busy"));
    /* plots: linked when gnuplot drew them, else the report says why */
    snprintf(path, sizeof path, "%s/plots/speedup_prefill_G_cc90_INT8_cuda13.0_M-X.png", dir);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        assert_true(sb.st_size > 1000);
        assert_non_null(strstr(md, "(plots/speedup_prefill_G_cc90_INT8_cuda13.0_M-X.png)"));
        assert_non_null(strstr(md, "(plots/tokens_per_s_prefill_G_cc90_INT8_cuda13.0_M-X.png)"));
    } else {
        assert_non_null(strstr(md, "Plots skipped"));
    }
    free(md);
    /* regenerating gives the same text */
    size_t len2 = 0;
    char *md1 = ss_test_read_file(report, &len);
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    char *md2 = ss_test_read_file(report, &len2);
    assert_int_equal(len, len2);
    assert_int_equal(memcmp(md1, md2, len), 0);
    free(md1);
    free(md2);
    ss_test_rmtree(dir);
    free(st);
}

/* The status file of a run in dir (what the report's task table reads). */
static void save_status(const char *dir) {
    char path[512];
    ss_pipe_status *st = calloc(1, sizeof *st);
    fill_status(st, dir);
    snprintf(path, sizeof path, "%s/run_all_20260102_030405_status.json", dir);
    assert_ok(ss_pipe_status_save(st, path));
    free(st);
}

/* ss_pipe_report of dir, read back. */
static char *report_md(const char *dir) {
    char report[1024];
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    size_t len;
    char *md = ss_test_read_file(report, &len);
    assert_non_null(md);
    return md;
}

/* A results folder holding the dense and 2_4 kernel points of task 6 and again of task 7
 * (as run-all writes them), dense at `second` µs in the repeat; its report in *md. */
static char *report_with_repeat(const char *dir, double second) {
    char path[512], t[1024];
    save_status(dir);
    const char *kh = "gpu,cc,dtype,cublaslt,cusparselt,toolchain,model,proj,M,N,K,K_slid,backend,pattern,level,"
                     "latency_us,tops,speedup,ideal,slid_eff,alg_id,split_k,algo\n";
    const char *dev = "G_cc90_FP8_cuda13.0";
    for (int task = 6; task <= 7; task++) {
        snprintf(path, sizeof path, "kernel_task%d/benchmark_kernel/cuBLASLt/%s/M-X_total.csv", task, dev);
        snprintf(t, sizeof t, "%s\"G, 80GB\",90,FP8,1,2,c,M-X,total,128,10,10,10,cublaslt,dense,gemm,%.1f,1,1,1,,,,\n",
                 kh, task == 6 ? 30.0 : second);
        write_csv(dir, path, t);
        snprintf(path, sizeof path, "kernel_task%d/benchmark_kernel/cuSPARSELt/%s/M-X_total.csv", task, dev);
        snprintf(t, sizeof t, "%s\"G, 80GB\",90,FP8,1,2,c,M-X,total,128,10,10,10,cusparselt,2_4,gemm,20.0,1,1,2,,,,\n",
                 kh);
        write_csv(dir, path, t);
    }
    return report_md(dir);
}

/* The busy-machine warning: present and visible right under the summary (busy), or
 * absent with the all-agree line. */
static void expect_busy(const char *md, int busy) {
    const char *warn = strstr(md, "**Warning: the machine was busy: treat these numbers with care.**");
    if (!busy) {
        assert_null(strstr(md, "machine was busy"));
        assert_non_null(strstr(md, "Every repeated point agrees within 10%."));
        return;
    }
    assert_non_null(warn);
    assert_true(warn < strstr(md, "## Tasks"));
}

static void test_report_spread(void **state) {
    (void)state;
    char dir[256];
    /* dense 30 and 40 µs in two runs: (40 - 30) / 35 = 29% > 10% */
    ss_test_tmpdir(dir, sizeof dir);
    char *md = report_with_repeat(dir, 40.0);
    expect_busy(md, 1);
    assert_non_null(strstr(md, "1 of 2 points measured more than once differ by more than 10%"));
    assert_non_null(strstr(md, "| kernel GEMM only | FP8 | M-X | dense | 1 | 2 | 128 | 30.0 µs | 35.0 µs | 40.0 µs | **28.6%** |"));
    assert_non_null(strstr(md, "| kernel GEMM only | FP8 | M-X | 2_4 | 1 | 2 | 128 | 20.0 µs | 20.0 µs | 20.0 µs | 0.0% |"));
    /* the summary compares the fastest run of each side: 30 / 20 */
    assert_non_null(strstr(md, "| kernel GEMM only | FP8 | M-X | **1.50×** (M 128) |"));
    free(md);
    ss_test_rmtree(dir);

    /* 30 and 30.6 µs: 2%, no warning */
    ss_test_tmpdir(dir, sizeof dir);
    md = report_with_repeat(dir, 30.6);
    expect_busy(md, 0);
    assert_non_null(strstr(md, "| 30.0 µs | 30.3 µs | 30.6 µs | 2.0% |"));
    free(md);
    ss_test_rmtree(dir);
}

/* A results folder whose prefill CSVs hold three runs of M 512 per variant (run-all with
 * throughput_repeats 3), dense at tokens/s d0, d1, d2 (requests/s d/100, elapsed 1000/d) and
 * 2_8 at 220, 240, 230; its report in *md. */
static char *report_with_runs(const char *dir, double d0, double d1, double d2) {
    char t[1024];
    save_status(dir);
    const char *h = "M,prompt_len,max_num_seqs,num_prompts,N,output_len,requests_per_s,tokens_per_s,elapsed_time_s\n";
    const double dense[3] = {d0, d1, d2}, sparse[3] = {220, 240, 230};
    for (int v = 0; v < 2; v++) {
        const double *x = v ? sparse : dense;
        int n = snprintf(t, sizeof t, "%s", h);
        for (int r = 0; r < 3; r++)
            n += snprintf(t + n, sizeof t - (size_t)n, "512,512,1,128,512,1,%g,%g,%g\n", x[r] / 100, x[r], 1000 / x[r]);
        write_csv(dir,
                  v ? "throughput_benchmark_results/prefill/G_cc90_INT8_cuda13.0/cusparselt/2_8/M-X_prefill.csv"
                    : "throughput_benchmark_results/prefill/G_cc90_INT8_cuda13.0/cublaslt/M-X_prefill.csv",
                  t);
    }
    return report_md(dir);
}

static void test_report_throughput_runs(void **state) {
    (void)state;
    char dir[256];
    /* dense runs 100, 200, 125: median 125 tokens/s, 1.25 requests/s, elapsed median 8 s;
     * 2_8 median 230; spread (200 - 100) / 125 = 80% > 10% */
    ss_test_tmpdir(dir, sizeof dir);
    char *md = report_with_runs(dir, 100, 200, 125);
    /* the stage table and the speedup take the medians, not the first or last run */
    assert_non_null(strstr(md, "| 512 | dense | 125.0 | 1.250 | 8.000 | 1 (baseline) |"));
    assert_non_null(strstr(md, "| 512 | 2_8 | 230.0 | 2.300 | 4.348 | 1.840 |"));
    /* and so does the summary: 230 / 125 */
    assert_non_null(strstr(md, "| prefill | INT8 | M-X | **1.84×** (M 512) |"));
    /* the spread section lists the throughput points; the busy warning covers them */
    char *spread = strstr(md, "## Measurement spread");
    assert_non_null(spread);
    assert_non_null(strstr(spread, "use the median of the runs"));
    assert_non_null(strstr(spread, "| prefill | INT8 | M-X | dense | 1 | 3 | 512 | 100.0 tokens/s | 125.0 tokens/s | "
                                   "200.0 tokens/s | **80.0%** |"));
    assert_non_null(strstr(spread, "| prefill | INT8 | M-X | 2_8 | 1 | 3 | 512 | 220.0 tokens/s | 230.0 tokens/s | "
                                   "240.0 tokens/s | 8.7% |"));
    assert_null(strstr(spread, "ran once per point"));
    expect_busy(md, 1);
    assert_non_null(strstr(md, "1 of 2 points measured more than once differ by more than 10% between their runs "
                               "(largest: M-X INT8 prefill, dense, M 512: min 100.0, median 125.0, max 200.0 tokens/s, 80%)"));
    free(md);
    ss_test_rmtree(dir);

    /* runs within 2%: listed, no warning */
    ss_test_tmpdir(dir, sizeof dir);
    md = report_with_runs(dir, 100, 102, 101);
    expect_busy(md, 0);
    assert_non_null(strstr(md, "| 512 | dense | 101.0 |"));
    assert_non_null(strstr(md, "| 100.0 tokens/s | 101.0 tokens/s | 102.0 tokens/s | 2.0% |"));
    free(md);
    ss_test_rmtree(dir);
}

/* run-all records the tuning table as <out>/tuning/... with <out> as it was given (relative to
 * where run-all ran); `report` run from anywhere else still finds it in the results folder. */
static void test_report_tuning_path(void **state) {
    (void)state;
    char dir[256], path[1024], cwd[1024], other[256], report[1024];
    ss_test_tmpdir(dir, sizeof dir);
    ss_test_tmpdir(other, sizeof other);
    assert_non_null(getcwd(cwd, sizeof cwd));
    ss_pipe_status *st = calloc(1, sizeof *st);
    fill_status(st, "results");
    char keydir[256];
    ss_tune_key_dir(&st->key, keydir, sizeof keydir);
    snprintf(st->tune_path, sizeof st->tune_path, "results/tuning/%s/tuning.json", keydir);
    snprintf(path, sizeof path, "%s/run_all_20260102_030405_status.json", dir);
    assert_ok(ss_pipe_status_save(st, path));
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_create(&st->key, &t));
    ss_tune_entry e = {.backend = SS_BACKEND_CPU, .in = SS_DTYPE_I8, .out = SS_DTYPE_BF16, .n = 64, .k = 32, .m = 256,
                       .n_top = 1};
    snprintf(e.best.desc, sizeof e.best.desc, "cpu default");
    e.top[0].algo = e.best;
    e.top[0].us = 12.5;
    assert_ok(ss_tune_table_put(t, &e));
    snprintf(path, sizeof path, "%s/tuning/%s/tuning.json", dir, keydir);
    assert_ok(ss_tune_table_save(t, path));
    ss_tune_table_free(t);

    char want[512];
    snprintf(want, sizeof want, "Table: `tuning/%s/tuning.json` (1 entries).", keydir);
    assert_int_equal(chdir(other), 0); /* neither the results folder nor its parent */
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    size_t len;
    char *md = ss_test_read_file(report, &len);
    assert_non_null(strstr(md, want));
    assert_non_null(strstr(md, "| cpu | I8 | 64 | 32 | 1 | cpu default | 12.50 |"));
    assert_null(strstr(md, "No tuning table was written"));
    free(md);

    /* no path recorded (the kernel tasks tuned alone): the table of the run's key is found */
    st->tune_path[0] = '\0';
    snprintf(path, sizeof path, "%s/run_all_20260102_030405_status.json", dir);
    assert_ok(ss_pipe_status_save(st, path));
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    md = ss_test_read_file(report, &len);
    assert_non_null(strstr(md, want));
    free(md);

    /* and none there: said so */
    snprintf(path, sizeof path, "%s/tuning", dir);
    ss_test_rmtree(path);
    assert_ok(ss_pipe_report(dir, report, sizeof report));
    md = ss_test_read_file(report, &len);
    assert_non_null(strstr(md, "No tuning table was written."));
    free(md);
    assert_int_equal(chdir(cwd), 0);
    ss_test_rmtree(dir);
    ss_test_rmtree(other);
    free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_round_trip), cmocka_unit_test(test_status_malformed),
        cmocka_unit_test(test_status_before_task9),
        cmocka_unit_test(test_resume_rule),       cmocka_unit_test(test_config),
        cmocka_unit_test(test_report),            cmocka_unit_test(test_report_spread),
        cmocka_unit_test(test_report_throughput_runs),
        cmocka_unit_test(test_report_tuning_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
