/* slidesparse bench prefill | decode: the throughput benchmarks of SPEC §8
 * (tasks 4-5) on one checkpoint and backend, with continuous batching. Writes
 *   <out>/throughput_benchmark_results/<stage>/<GPU>_cc<cc>_<dtype>_<toolchain>/
 *       <backend>[/2_L]/<Model>_<stage>.csv
 * one row per M (merged with rows of other M already there, written atomically
 * after each M), then the speedup table of every backend found side by side.
 * bench decode --soak SECONDS repeats one M instead and watches memory
 * (bench_soak.c); it writes no throughput CSV. */
#include "bench_soak.h"
#include "cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/engine_gpu.h"
#include "slidesparse/serve.h"
#include "slidesparse/tune.h"

#define MAX_M 16

/* Set by SIGINT; the serving loop checks it between steps. */
static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f, const char *stage) {
    int pre = !strcmp(stage, "prefill");
    fprintf(f,
            "usage: slidesparse bench %s --model DIR [--backend " CLI_BACKEND_VALUES "] [--device I]\n"
            "        [--m %s] [--scale quick|full | --num-prompts-scale F] [--out DIR]\n"
            "        [--seed N] [--gpu-memory-fraction F] [--kv-memory-mb MB] [--kv-dtype bf16|fp8]\n"
            "        [--profile]\n"
            "  Workload per M (SPEC §8): %s\n"
            "  Random prompt ids (fixed --seed, default 1). tokens/s = (input + output tokens) /\n"
            "  elapsed, requests/s = prompts / elapsed; elapsed excludes load and warm-up.\n"
            CLI_BACKEND_HELP
            "                     (auto, the default, and gpu: cusparselt for SlideSparse checkpoints,\n"
            "                     cublaslt for dense ones)\n"
            "  Prints one line per M as it starts (its workload), then its result.\n"
            "  --scale quick: 1/16 of the prompts per M, never less than one wave of S (decode,\n"
            "    where R = S = M, is not scaled); same M list; num_prompts is in the CSV;\n"
            "    --num-prompts-scale F in (0, 1] sets the fraction directly.\n"
            "  KV cache: --gpu-memory-fraction (default 0.8) of free device memory after loading;\n"
            "    on the CPU a fixed --kv-memory-mb (default 1024). When the pool runs out the newest\n"
            "    sequence is preempted and recomputed later.\n"
            "  --kv-dtype bf16|fp8 (default bf16): the KV cache's element type; fp8 stores e4m3 with a\n"
            "    scale per (token, kv head) row: half the bytes, so ~2x the blocks fit the same budget and\n"
            "    decode reads half the cache. The CSV model name gets '-kvfp8' (compared only with fp8).\n"
            "  --profile: per step: host (scheduling, block tables), forward split per layer\n"
            "    (layer hook) and final norm + lm_head, sampling; then the averages.\n"
            "  --out DIR (default .): CSVs under DIR/throughput_benchmark_results/%s/.\n",
            stage, pre ? "512,1024,...,32768" : "64,128,256,512",
            pre ? "P = min(M,1024), O = 1, S = ceil(M/1024), R = 128*S, T = S*P"
                : "P = 16, O = 256, S = R = M, T = max(M,272)",
            stage);
    if (pre)
        return;
    fprintf(f,
            "  --soak SECONDS (exactly one --m): a memory soak instead of the benchmark. Serves the\n"
            "    decode workload of M at least twice, then again until SECONDS of wall time have passed\n"
            "    (checked after each repetition; Ctrl-C stops, exit 130). Prints device memory used\n"
            "    (cudaMemGetInfo total - free) and host RSS (VmRSS, peak VmHWM) after load and after every\n"
            "    repetition, then 'soak: N repetitions in S s, device memory after first repetition X MB,\n"
            "    at end Y MB, growth Z MB'. Exit %d when the growth from the first repetition to the last\n"
            "    exceeds %.0f MB (a leaked allocation shows as >= one 2 MB driver page). On a CPU context\n"
            "    there is no device memory: host RSS is judged instead, with max(%.0f MB, %.0f%%) of\n"
            "    tolerance for malloc's lazily trimmed arenas (not judged in an AddressSanitizer build,\n"
            "    whose quarantine keeps freed memory resident). Writes NO throughput CSV; writes\n"
            "    DIR/soak_<M>.csv (one row per repetition, replaced atomically after each).\n",
            SOAK_EXIT_GROWTH, SOAK_DEVICE_TOL_MB, SOAK_HOST_TOL_MB, 100 * SOAK_HOST_TOL_FRAC);
}

/* "64,128" -> ms; 0 on junk. */
static int parse_m_list(const char *s, int64_t *ms, int *n) {
    *n = 0;
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
        return 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long v;
        if (*n >= MAX_M || !cli_parse_i64(tok, 1, 1 << 30, &v))
            return 0;
        ms[(*n)++] = v;
    }
    return *n > 0 && s[strlen(s) - 1] != ',';
}

typedef struct {
    int step_lines;
} profile_state;

static void print_step(void *user, const ss_step_timing *t) {
    double total = t->host_s + t->forward_s + t->sample_s;
    printf("  step %5lld: %3d seqs %6lld tokens (%lld decode)  host %8.3f ms (%4.1f%%)  forward %8.3f ms",
           (long long)t->step, t->n_seqs, (long long)t->n_tokens, (long long)t->n_decode, 1e3 * t->host_s,
           total > 0 ? 100 * t->host_s / total : 0.0, 1e3 * t->forward_s);
    if (t->layers_s) {
        printf(" [layers");
        for (int i = 0; i < t->n_layers; i++)
            printf(" %.3f", 1e3 * t->layers_s[i]);
        printf("; norm+lm_head %.3f]", 1e3 * t->head_s);
    }
    printf("  sampling %.3f ms\n", 1e3 * t->sample_s);
    if (t->stages) {
        const ss_stage_times *a = t->stages;
        printf("             stages (replay, ms): quant/lift %.3f  GEMM %.3f  dequant %.3f  attention %.3f"
               "  norms/elementwise %.3f  lm_head %.3f\n",
               1e3 * a->quant_s, 1e3 * a->gemm_s, 1e3 * a->dequant_s, 1e3 * a->attention_s, 1e3 * a->norms_s,
               1e3 * a->lm_head_s);
    }
}

/* Decode: the bytes a step must move (projection weights + lm_head, and the
 * KV cache rows attention reads) over the step time, against the copy rate
 * measured on this device (copy_tbs > 0) — how close the step is to memory
 * speed. */
static void print_memory_speed(const ss_model_config *cfg, ss_kv_dtype kvd, double weight_bytes,
                               double copy_tbs, const ss_throughput_row *r) {
    if (copy_tbs <= 0 || r->stats.steps == 0)
        return;
    double kv = ss_model_kv_row_bytes(cfg, kvd) * (double)r->stats.kv_rows;
    double w = weight_bytes * (double)r->stats.steps, tbs = (w + kv) / r->elapsed_s / 1e12;
    printf("  memory speed: weights %.1f MB + KV (%s) %.1f MB per step (mean) = %.3f TB/s, %.1f%% of the "
           "measured copy rate %.3f TB/s (weights alone %.1f%%)\n",
           weight_bytes / 1e6, ss_kv_dtype_name(kvd), kv / (double)r->stats.steps / 1e6, tbs, 100 * tbs / copy_tbs, copy_tbs,
           100 * w / r->elapsed_s / 1e12 / copy_tbs);
}

static void print_bound(ss_stage st, const ss_model_config *cfg, ss_kv_dtype kvd, const ss_peak *pk,
                        double copy_tbs, const ss_throughput_row *r) {
    double params, bytes;
    ss_model_weight_stats(cfg, &params, &bytes);
    if (st == SS_STAGE_PREFILL) {
        double tops = 2 * params * (double)(r->input_tokens + r->output_tokens) / r->elapsed_s / 1e12;
        double peak = pk ? (cfg->weight_dtype == SS_DTYPE_F8_E4M3 ? pk->fp8_tops : pk->int8_tops) : 0;
        if (peak > 0)
            printf("  compute: %.2f TOPS of projections (2*params*tokens), %.1f%% of the %s dense peak %.0f TOPS\n",
                   tops, 100 * tops / peak, pk->label, peak);
        else
            printf("  compute: %.4f TOPS of projections (2*params*tokens); fraction of peak: n/a\n", tops);
    } else {
        double tbs = bytes * (double)r->stats.steps / r->elapsed_s / 1e12;
        if (pk)
            printf("  weight bandwidth: %.1f MB/step x %lld steps = %.3f TB/s, %.1f%% of the %s %.2f TB/s\n",
                   bytes / 1e6, (long long)r->stats.steps, tbs, 100 * tbs / pk->bw_tbs, pk->label, pk->bw_tbs);
        else
            printf("  weight bandwidth: %.1f MB/step x %lld steps = %.4f TB/s; fraction of peak: n/a\n",
                   bytes / 1e6, (long long)r->stats.steps, tbs);
        print_memory_speed(cfg, kvd, bytes, copy_tbs, r);
    }
}

static void print_profile(const ss_serve_stats *s) {
    double total = s->host_s + s->forward_s + s->sample_s;
    if (s->steps == 0 || total <= 0)
        return;
    double n = (double)s->steps;
    printf("  per step (mean of %lld): host %.3f ms (%.1f%%, max %.1f%%), layers %.3f ms, norm+lm_head %.3f ms,"
           " sampling %.3f ms\n",
           (long long)s->steps, 1e3 * s->host_s / n, 100 * s->host_s / total, 100 * s->max_host_frac,
           1e3 * s->layers_s / n, 1e3 * s->head_s / n, 1e3 * s->sample_s / n);
    if (s->has_stages) {
        const ss_stage_times *a = &s->stages;
        double sum = a->quant_s + a->gemm_s + a->dequant_s + a->attention_s + a->norms_s + a->lm_head_s +
                     s->sample_s + s->host_s;
        printf("  stages per step (replayed on the CPU engine; %% of their sum):\n");
        const char *names[] = {"quant/lift", "GEMM", "dequant", "attention", "norms/elementwise", "lm_head",
                               "sampling", "host"};
        double v[] = {a->quant_s, a->gemm_s, a->dequant_s, a->attention_s, a->norms_s, a->lm_head_s,
                      s->sample_s, s->host_s};
        for (int i = 0; i < 8; i++)
            printf("    %-18s %9.3f ms  %5.1f%%\n", names[i], 1e3 * v[i] / n, sum > 0 ? 100 * v[i] / sum : 0.0);
    } else {
        printf("  (no per-stage split on this engine: quant/GEMM/dequant/attention are inside 'layers')\n");
    }
}

static int run(ss_stage st, int argc, char **argv) {
    const char *cmd = ss_stage_name(st);
    char cmdname[32];
    snprintf(cmdname, sizeof cmdname, "bench %s", cmd);
    const char *model = NULL, *backend_s = NULL, *dev_s = NULL, *m_s = NULL, *scale_s = NULL,
               *nps_s = NULL, *out = ".", *seed_s = NULL, *frac_s = NULL, *kvmb_s = NULL,
               *soak_s = NULL, *kvd_s = NULL;
    int profile = 0;
    const cli_option opts[] = {
        CLI_FLAG("--profile", &profile), CLI_OPT("--model", &model),
        CLI_OPT("--backend", &backend_s), CLI_OPT("--device", &dev_s), CLI_OPT("--m", &m_s),
        CLI_OPT("--scale", &scale_s), CLI_OPT("--num-prompts-scale", &nps_s),
        CLI_OPT("--out", &out), CLI_OPT("--seed", &seed_s),
        CLI_OPT("--gpu-memory-fraction", &frac_s), CLI_OPT("--kv-memory-mb", &kvmb_s),
        CLI_OPT("--soak", &soak_s), CLI_OPT("--kv-dtype", &kvd_s), CLI_ALIAS("--M", "--m"), CLI_END,
    };
    int parsed = cli_parse(cmdname, argc, argv, opts, NULL);
    if (parsed == CLI_HELP) {
        usage(stdout, cmd);
        return 0;
    }
    if (parsed)
        return parsed;
    if (!model) {
        cli_error(cmdname, "--model DIR is required (see --help)");
        return 2;
    }

    /* --- arguments that need no model -------------------------------------------------- */
    cli_backend be;
    if (!cli_backend_parse(cmdname, backend_s, &be))
        return 2;
    int64_t ms[MAX_M];
    int n_m = 0;
    if (m_s) {
        if (!parse_m_list(m_s, ms, &n_m)) {
            cli_error(cmdname, "--m '%.64s': expected a comma-separated list of at most %d integers", m_s, MAX_M);
            return 2;
        }
    } else if (st == SS_STAGE_PREFILL) {
        for (int64_t v = 512; v <= 32768; v *= 2)
            ms[n_m++] = v;
    } else {
        for (int64_t v = 64; v <= 512; v *= 2)
            ms[n_m++] = v;
    }
    char *end;
    double soak = 0;
    if (soak_s) {
        if (st != SS_STAGE_DECODE) {
            cli_error(cmdname, "--soak is a decode soak: use bench decode --m M --soak SECONDS");
            return 2;
        }
        if (!(soak = strtod(soak_s, &end)) || *end || !(soak > 0 && soak <= 604800)) {
            cli_error(cmdname, "--soak '%.64s': expected a number of seconds in (0, 604800]", soak_s);
            return 2;
        }
        if (n_m != 1) {
            cli_error(cmdname, "--soak runs exactly one M, found %d (give --m 64, 128, 256 or 512)", n_m);
            return 2;
        }
        /* soak_<M>.csv must fit bench_soak's path buffer: say so before loading a model */
        if (strlen(out) > 4000) {
            cli_error(cmdname, "--out '%.64s...': path too long (%zu bytes) for the soak CSV", out, strlen(out));
            return 2;
        }
    }
    ss_workload wl[MAX_M];
    for (int i = 0; i < n_m; i++)
        if (ss_workload_make(st, ms[i], &wl[i]) != SS_OK)
            return cli_lib_error(cmdname, SS_EINVAL);
    double scale = 1;
    if (scale_s && nps_s) {
        cli_error(cmdname, "--scale and --num-prompts-scale exclude each other");
        return 2;
    }
    if (scale_s) {
        if (!strcmp(scale_s, "quick"))
            scale = 1.0 / 16;
        else if (strcmp(scale_s, "full")) {
            cli_error(cmdname, "--scale '%s': expected quick or full", scale_s);
            return 2;
        }
    }
    if (nps_s && (!(scale = strtod(nps_s, &end)) || *end || !(scale > 0 && scale <= 1))) {
        cli_error(cmdname, "--num-prompts-scale '%s': expected a number in (0, 1]", nps_s);
        return 2;
    }
    double frac = 0.8;
    if (frac_s && (!(frac = strtod(frac_s, &end)) || *end || !(frac > 0 && frac <= 0.95))) {
        cli_error(cmdname, "--gpu-memory-fraction '%s': expected a number in (0, 0.95]", frac_s);
        return 2;
    }
    double kv_mb = 1024;
    if (kvmb_s && (!(kv_mb = strtod(kvmb_s, &end)) || *end || !(kv_mb > 0 && kv_mb <= 1 << 24))) {
        cli_error(cmdname, "--kv-memory-mb '%s': expected a number of MB in (0, %d]", kvmb_s, 1 << 24);
        return 2;
    }
    long long dev = 0, seed = 1;
    if (dev_s && !cli_parse_i64(dev_s, 0, 1024, &dev)) {
        cli_error(cmdname, "--device '%s': expected a CUDA device ordinal >= 0", dev_s);
        return 2;
    }
    if (seed_s && !cli_parse_i64(seed_s, 0, INT64_MAX, &seed)) {
        cli_error(cmdname, "--seed '%s': expected a non-negative integer", seed_s);
        return 2;
    }
    ss_kv_dtype kvd = SS_KV_DTYPE_BF16;
    if (kvd_s && ss_kv_dtype_parse(kvd_s, &kvd) != SS_OK) {
        cli_error(cmdname, "--kv-dtype '%.64s': expected bf16 or fp8", kvd_s);
        return 2;
    }
    /* the CSVs are written after the benchmark: their folder is checked now */
    ss_status s = ss_outdir_check_writable(out, "--out");
    if (s == SS_OK)
        s = ss_outdir_check_input(out, model, 0);
    if (s != SS_OK)
        return cli_lib_error(cmdname, s);
    /* --- the checkpoint against backend and workloads, before loading ------------------- */
    char cfg_path[4096];
    ss_model_config cfg;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", model);
    if ((s = ss_model_config_load(cfg_path, &cfg)) != SS_OK)
        return cli_lib_error(cmdname, s);
    int slid = cfg.kind == SS_WEIGHTS_SLID;
    ss_backend backend = cli_backend_for_model(&be, slid);
    if ((s = cli_check_backend(model, &cfg, backend, dev)) != SS_OK)
        return cli_lib_error(cmdname, s);
    for (int i = 0; i < n_m; i++)
        if (wl[i].prompt_len + wl[i].output_len > cfg.max_position_embeddings) {
            cli_error(cmdname, "M %lld: prompt %lld + output %lld tokens exceed max_position_embeddings %d of %s",
                      (long long)ms[i], (long long)wl[i].prompt_len, (long long)wl[i].output_len,
                      cfg.max_position_embeddings, model);
            return 2;
        }
    /* --- load -------------------------------------------------------------------------- */
    ss_context *ctx = NULL;
    ss_model *m = NULL;
    int rc = 1;
    if ((s = ss_context_create(cli_device_for(backend, dev), &ctx)) != SS_OK ||
        (s = ss_context_set_tuning(ctx, NULL, NULL, NULL)) != SS_OK || /* $SS_TUNING_DIR */
        (s = ss_model_load(ctx, backend, model, &m)) != SS_OK) {
        rc = cli_lib_error(cmdname, s);
        goto done;
    }
    ss_model_set_kv_dtype(m, kvd);
    ss_tune_key key;
    char describe[512], devdir[256], pat[16], stem[256], dir[4096], path[8192];
    if ((s = ss_tune_key_of(ctx, &key)) != SS_OK || (s = ss_context_describe(ctx, describe, sizeof describe)) != SS_OK) {
        rc = cli_lib_error(cmdname, s);
        goto done;
    }
    /* <GPU>_cc<cc>_<dtype>_<toolchain> */
    char gpu[sizeof key.gpu];
    snprintf(gpu, sizeof gpu, "%s", key.gpu);
    for (char *p = gpu; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            *p = '_';
    const char *dt = cfg.weight_dtype == SS_DTYPE_I8 ? "INT8" : cfg.weight_dtype == SS_DTYPE_F8_E4M3 ? "FP8" : "BF16";
    /* One folder for every backend of a device, so results sit side by side. */
    snprintf(devdir, sizeof devdir, "%s_cc%d_%s_%s", gpu, key.cc, dt, key.toolchain);
    ss_model_stem(model, stem, sizeof stem);
    if (kvd == SS_KV_DTYPE_FP8) /* its own CSV and speedup table: not comparable with BF16 KV rows */
        snprintf(stem + strlen(stem), sizeof stem - strlen(stem), "-kv%s", ss_kv_dtype_name(kvd));
    snprintf(dir, sizeof dir, "%s/throughput_benchmark_results/%s/%s", out, cmd, devdir);
    if (slid)
        snprintf(path, sizeof path, "%s/%s/%s/%s_%s.csv", dir, ss_backend_name(backend),
                 ss_pattern_format(cfg.pattern, pat, sizeof pat), stem, cmd);
    else
        snprintf(path, sizeof path, "%s/%s/%s_%s.csv", dir, ss_backend_name(backend), stem, cmd);

    /* --- the KV pool budget ------------------------------------------------------------- */
    size_t block = ss_kv_block_bytes(&cfg, kvd), budget;
    if (backend == SS_BACKEND_CPU) {
        budget = (size_t)(kv_mb * 1048576.0);
    } else {
        size_t fr = 0, tot = 0;
        if ((s = ss_device_memory(ctx, &fr, &tot)) != SS_OK) {
            rc = cli_lib_error(cmdname, s);
            goto done;
        }
        budget = (size_t)(frac * (double)fr);
    }
    int64_t blocks64 = (int64_t)(budget / block);
    int32_t kv_blocks = blocks64 > INT32_MAX ? INT32_MAX : (int32_t)blocks64;
    const ss_peak *pk = ss_peak_lookup(key.gpu);
    printf("device: %s\n", describe);
    printf("model: %s (%s, %s%s%s), backend %s, KV budget %.1f MB = %d blocks of %zu bytes (%s)\n", model, stem,
           dt, slid ? ", " : "", slid ? pat : "", ss_backend_name(backend), (double)budget / 1048576.0,
           (int)kv_blocks, block, ss_kv_dtype_name(kvd));
    printf("peak: %s\n", pk ? pk->label : "n/a (no peak table entry for this device)");
    double copy_tbs = 0;
    if (st == SS_STAGE_DECODE && ss_context_device(ctx) >= 0) {
        if ((s = ss_device_copy_tbs(ctx, &copy_tbs)) != SS_OK) {
            rc = cli_lib_error(cmdname, s);
            goto done;
        }
        printf("copy rate: %.3f TB/s device to device (read + write, 256 MB)\n", copy_tbs);
    }
    printf("prompt scale: %g%s\n", scale, scale < 1 ? " (fewer prompts per M; num_prompts in the CSV)" : "");

    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    ss_serve_opts so = {.stop = &g_stop, .profile = profile, .on_step = profile ? print_step : NULL};
    if (soak > 0) {
        bench_soak_opts bo = {.cmd = cmdname, .ctx = ctx, .model = m, .kv_blocks = kv_blocks, .w = &wl[0],
                              .seed = (uint64_t)seed, .seconds = soak, .out_dir = out, .serve = &so};
        rc = bench_soak(&bo);
        goto restore;
    }
    for (int i = 0; i < n_m; i++) {
        const ss_workload *w = &wl[i];
        int64_t r = ss_workload_scaled_prompts(w, scale);
        printf("M %lld: P %lld, O %lld, S %d, R %lld, T %lld\n", (long long)w->m, (long long)w->prompt_len,
               (long long)w->output_len, w->max_num_seqs, (long long)r, (long long)w->max_num_batched_tokens);
        fflush(stdout);
        ss_throughput_row row;
        if ((s = ss_throughput_run(m, kv_blocks, w, r, (uint64_t)seed, &so, &row)) != SS_OK) {
            rc = cli_lib_error(cmdname, s);
            goto restore;
        }
        if (row.stats.stopped) {
            fprintf(stderr, "slidesparse %s: interrupted at M %lld; rows of earlier M are saved, none for this one\n",
                    cmdname, (long long)w->m);
            rc = 130;
            goto restore;
        }
        if ((s = ss_throughput_save(path, &row, 1)) != SS_OK) {
            rc = cli_lib_error(cmdname, s);
            goto restore;
        }
        printf("  %.3f s: %.2f requests/s, %.1f tokens/s (%lld in + %lld out), %lld steps, %lld preemptions,"
               " host %.1f%% of step time\n",
               row.elapsed_s, row.requests_per_s, row.tokens_per_s, (long long)row.input_tokens,
               (long long)row.output_tokens, (long long)row.stats.steps, (long long)row.stats.preemptions,
               100 * row.stats.host_s / (row.stats.host_s + row.stats.forward_s + row.stats.sample_s));
        int64_t captures = 0, replays = 0;
        ss_engine_gpu_graph_counts(m, &captures, &replays);
        if (captures || replays) /* a capture per step would mean the graphs never pay off */
            printf("  decode CUDA graphs so far: %lld captures, %lld replays\n", (long long)captures,
                   (long long)replays);
        print_bound(st, &cfg, kvd, pk, copy_tbs, &row);
        if (profile)
            print_profile(&row.stats);
    }
    printf("wrote %s\n", path);
    int written = 0;
    if ((s = ss_throughput_speedup(dir, stem, st, &written)) != SS_OK) {
        rc = cli_lib_error(cmdname, s);
        goto restore;
    }
    if (written)
        printf("wrote %s/%s_%s_speedup.csv\n", dir, stem, cmd);
    rc = 0;
restore:
    sigaction(SIGINT, &old_sa, NULL);
done:
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    return rc;
}

int cmd_bench_prefill(int argc, char **argv) { return run(SS_STAGE_PREFILL, argc, argv); }
int cmd_bench_decode(int argc, char **argv) { return run(SS_STAGE_DECODE, argc, argv); }
