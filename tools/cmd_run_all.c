/* slidesparse run-all: the whole seed pipeline (tasks 1-9) in one resumable
 * command, with a log, a status JSON and a Markdown report with plots
 * (slidesparse/pipeline.h holds the layout and the config-file schema). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slidesparse/pipeline.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: slidesparse run-all [--config FILE] [--out DIR] [--resume] [--task 1,2,4]\n"
            "        [--preset bitnet-2b,...] [--dtype int8,fp8] [--sparsity 2_4,2_6,2_8,2_10]\n"
            "        [--model DIR] [--scale quick|full] [--backend auto|gpu|cpu] [--name NAME] [--quiet]\n"
            "        [--stop-after SECONDS] [--redo 4,5]\n"
            "  Tasks: 1 base checkpoints (--model DIR, else one present under <out>/checkpoints, else\n"
            "  synthesized with the exact configuration of the --preset) + INT8/FP8 quantization;\n"
            "  2 convert to the --sparsity patterns; 3 tune (coarse + fine); 4 prefill; 5 decode;\n"
            "  6 kernel dense; 7 kernel 2_4..2_10; 8 kernel 2_12, 2_14, 2_16, 2_inf; 9 accuracy:\n"
            "  perplexity of the dense model and each --sparsity pattern on 256 token ids drawn from the\n"
            "  seed (<out>/accuracy/.../<Model>_perplexity.csv, a table in the report).\n"
            "  With a GPU the defaults follow SPEC §8: bitnet-2b, INT8 + FP8, prefill M 512..32768,\n"
            "  decode M 64..512, kernel M 64..16384, full scale. Without one (or --backend cpu) the\n"
            "  embedded default runs: tiny-bitnet on the CPU backend, one or two M per stage, quick scale.\n"
            "  --preset LIST: the models, by preset name; --model DIR: a BF16 Hugging Face checkpoint\n"
            "    of the one --preset whose configuration it has (task 1's input).\n"
            "  --sparsity LIST: patterns 2_L, even L >= 4 (or 6:8 style)\n"
            CLI_SPARSITY_HELP
            CLI_BACKEND_HELP
            "                     (run-all runs every library its tasks measure: a library name is\n"
            "                     refused; auto, gpu or cpu pick the device)\n"
            "  --out DIR (default results): checkpoints, CSVs (SPEC §8 layout), <name>_<stamp>.log,\n"
            "    <name>_<stamp>_status.json (rewritten after every task) and <GPU>_report_<date>.md.\n"
            "  --resume: continue the newest run in --out (its own configuration): finished tasks\n"
            "    are kept, an interrupted or failed one starts over.\n"
            "  --stop-after S: start no task after S seconds (one time-limited slice of a long run);\n"
            "    exit 3 with the rest pending; allowed with --resume.\n"
            "  --redo LIST: with --resume, run these finished tasks again (e.g. after a fix).\n"
            "  --config FILE: JSON, keys out, name, tasks, models, dtypes, sparsity, sparsity_task8,\n"
            "    m_prefill, m_decode, m_kernel, m_tune_coarse, m_tune_fine, tune_stages, scale,\n"
            "    backend, device, base, checkpoints, warmup, repeat, throughput_repeats, kv_memory_mb,\n"
            "    gpu_memory_fraction, seed (schema in include/slidesparse/pipeline.h); options given\n"
            "    on the command line override the file.\n"
            "    throughput_repeats N (1..16; GPU default 3, embedded default 1): tasks 4-5 run each\n"
            "    point N times, one CSV row per run; tables and speedups use the median, the report\n"
            "    shows min / median / max under \"Measurement spread\".\n");
}

typedef struct {
    int tty, quiet, drawn;
    double last_s; /* last redraw: at most ~10 a second */
} ui;

static void clear_line(ui *u) {
    if (u->drawn) {
        fputs("\r\033[K", stdout);
        u->drawn = 0;
    }
}

static void on_log(void *user, const char *line) {
    ui *u = user;
    clear_line(u);
    if (!u->quiet)
        printf("%s\n", line);
    fflush(stdout);
}

static void hms(double s, char *b, size_t n) {
    if (s < 0)
        snprintf(b, n, "--:--");
    else
        snprintf(b, n, "%ld:%02ld", (long)(s + 0.5) / 60, (long)(s + 0.5) % 60);
}

static void on_progress(void *user, const ss_pipe_progress *p) {
    ui *u = user;
    if (!u->tty || u->quiet)
        return;
    double now = ss_monotonic_s();
    if (u->drawn && now - u->last_s < 0.1)
        return;
    u->last_s = now;
    char el[32], eta[32];
    hms(p->elapsed_s, el, sizeof el);
    hms(p->eta_s, eta, sizeof eta);
    printf("\r\033[Krun-all task %d/%d (#%d %s)  elapsed %s  ETA %s  | %.70s", p->k, p->n, p->task, p->name, el, eta,
           p->what);
    u->drawn = 1;
    fflush(stdout);
}

int cmd_run_all(int argc, char **argv) {
    const char *cmd = "run-all", *config = NULL, *out = NULL, *tasks = NULL, *models = NULL, *dtypes = NULL,
               *sparsity = NULL, *base = NULL, *scale = NULL, *backend = NULL, *name = NULL, *stop = NULL, *redo = NULL;
    int resume = 0, quiet = 0;
    const cli_option opts[] = {
        CLI_OPT("--config", &config), CLI_OPT("--out", &out), CLI_OPT("--task", &tasks),
        CLI_OPT("--preset", &models), CLI_OPT("--dtype", &dtypes), CLI_OPT("--sparsity", &sparsity),
        CLI_OPT("--model", &base), CLI_OPT("--scale", &scale), CLI_OPT("--backend", &backend),
        CLI_OPT("--name", &name), CLI_OPT("--stop-after", &stop), CLI_OPT("--redo", &redo),
        CLI_FLAG("--resume", &resume), CLI_FLAG("--quiet", &quiet),
        CLI_ALIAS("--tasks", "--task"), CLI_ALIAS("--models", "--preset"), CLI_ALIAS("--dtypes", "--dtype"),
        CLI_ALIAS("--base", "--model"), CLI_END,
    };
    int parsed = cli_parse(cmd, argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    /* what --resume takes from the earlier run */
    int other = config || tasks || models || dtypes || sparsity || base || scale || backend || name;
    if (resume && other)
        return cli_error(cmd, "--resume continues the newest run in --out with its own configuration; give only --out (and --stop-after, --redo)") + 1;
    cli_backend be;
    if (!cli_backend_parse(cmd, backend, &be))
        return 2;
    if (be.library >= 0 && be.library != SS_BACKEND_CPU)
        return cli_error(cmd, "--backend '%s': run-all measures every GEMM library of its tasks; expected auto, "
                         "gpu or cpu", backend) + 1;
    if (scale && strcmp(scale, "quick") && strcmp(scale, "full"))
        return cli_error(cmd, "--scale '%s': expected quick or full", scale) + 1;
    double stop_after = 0;
    if (stop) {
        char *end = NULL;
        stop_after = strtod(stop, &end);
        if (end == stop || *end || !(stop_after > 0) || stop_after > 1e7)
            return cli_error(cmd, "--stop-after '%s': expected a positive number of seconds", stop) + 1;
    }
    ss_pipe_opts o = {.resume = resume, .stop_after_s = stop_after, .log = on_log, .progress = on_progress};
    if (redo) {
        if (!resume)
            return cli_error(cmd, "--redo reruns tasks of an earlier run: it needs --resume") + 1;
        ss_pipe_config tmp;
        ss_status rs = ss_pipe_parse_tasks(redo, &tmp);
        if (rs != SS_OK)
            return cli_lib_error(cmd, rs);
        memcpy(o.redo, tmp.tasks, sizeof o.redo);
    }
    ss_pipe_config *c = &o.config;
    int gpu = be.gpu >= 0 ? be.gpu : ss_cuda_device_count() > 0;
    ss_pipe_config_default(c, gpu);
    ss_status s = SS_OK;
    if (config && (s = ss_pipe_config_load(config, c)) != SS_OK)
        return cli_lib_error(cmd, s);
    if ((tasks && (s = ss_pipe_parse_tasks(tasks, c)) != SS_OK) ||
        (models && (s = ss_pipe_parse_models(models, c)) != SS_OK) ||
        (dtypes && (s = ss_pipe_parse_dtypes(dtypes, c)) != SS_OK) ||
        (sparsity && (s = ss_pipe_parse_sparsity(sparsity, c)) != SS_OK))
        return cli_lib_error(cmd, s);
    if (out)
        snprintf(c->out, sizeof c->out, "%s", out);
    if (base)
        snprintf(c->base, sizeof c->base, "%s", base);
    if (name)
        snprintf(c->name, sizeof c->name, "%s", name);
    if (scale)
        c->quick = !strcmp(scale, "quick");
    if (backend)
        c->backend = be.gpu < 0 ? 0 : be.gpu ? 1 : 2;
    if ((s = ss_pipe_config_check(c)) != SS_OK)
        return cli_lib_error(cmd, s);
    ui u = {.tty = isatty(fileno(stdout)), .quiet = quiet};
    o.user = &u;
    ss_pipe_result res;
    s = ss_pipe_run(&o, &res);
    clear_line(&u);
    if (s != SS_OK)
        return cli_lib_error(cmd, s);
    printf("run-all: %d tasks done, %d skipped, %d failed\n  status %s\n  log    %s\n  report %s\n", res.n_done,
           res.n_skipped, res.n_failed, res.status_path, res.log_path, res.report_path[0] ? res.report_path : "(failed)");
    if (res.n_pending)
        printf("  %d task(s) left: continue with `slidesparse run-all --resume --out %s`\n", res.n_pending,
               c->out[0] ? c->out : "results");
    if (res.n_failed) /* stdout may go to a file: the reason belongs on stderr too */
        cli_error(cmd, "%d task(s) failed; first %s (log: %s)", res.n_failed, res.first_failure,
                  res.log_path);
    return res.n_failed ? 1 : res.n_pending ? 3 : 0;
}
