/* slidesparse tune (task 3): algorithm search for a model's GEMM shapes, kept
 * in the tuning table of this GPU + library versions. Also the helpers
 * `bench kernel` shares (tools/bench_cli.h). */
#include "cli.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_cli.h"

// --- shared helpers ---------------------------------------------------------------------

int bcli_parse_m(const char *cmd, const char *opt, const char *s, int64_t *out, int *n) {
    char buf[1024];
    *n = 0;
    if (!s || !*s || strlen(s) >= sizeof buf)
        return !cli_error(cmd, "%s: expected a comma-separated list of M values, found '%s'", opt,
                          s ? s : "");
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long v;
        if (!cli_parse_i64(t, 1, 1 << 20, &v))
            return !cli_error(cmd, "%s: expected positive integers up to %d, found '%s'", opt,
                              1 << 20, t);
        if (*n >= BCLI_MAX_LIST)
            return !cli_error(cmd, "%s: more than %d values", opt, BCLI_MAX_LIST);
        out[(*n)++] = v;
    }
    if (*n == 0 || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,"))
        return !cli_error(cmd, "%s: expected a comma-separated list of M values, found '%s'", opt, s);
    return 1;
}

int bcli_parse_patterns(const char *cmd, const char *s, ss_pattern *out, int *n) {
    char buf[512];
    *n = 0;
    if (!s || !*s || strlen(s) >= sizeof buf)
        return !cli_error(cmd, "--sparsity: expected patterns 2_L (even L >= 4), (L-2):L or 2_inf, found '%s'",
                          s ? s : "");
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ss_pattern p;
        if (ss_pattern_parse(t, &p) != SS_OK || ss_pattern_is_dense(p))
            return !cli_error(cmd, "--sparsity: expected patterns 2_L (even L >= 4), (L-2):L "
                              "or 2_inf, found '%s'", t);
        for (int i = 0; i < *n; i++)
            if (out[i].l == p.l)
                return !cli_error(cmd, "--sparsity: pattern '%s' given twice", t);
        if (*n >= BCLI_MAX_LIST)
            return !cli_error(cmd, "--sparsity: more than %d patterns", BCLI_MAX_LIST);
        out[(*n)++] = p;
    }
    if (*n == 0)
        return !cli_error(cmd, "--sparsity: expected patterns 2_L, found '%s'", s);
    return 1;
}

int bcli_parse_dtypes(const char *cmd, const char *s, ss_dtype *out, int *n) {
    char buf[128];
    *n = 0;
    if (!s || strlen(s) >= sizeof buf)
        return !cli_error(cmd, "--dtype: expected int8, fp8 or int8,fp8");
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ss_dtype d;
        if (ss_dtype_parse(t, &d) != SS_OK || (d != SS_DTYPE_I8 && d != SS_DTYPE_F8_E4M3))
            return !cli_error(cmd, "--dtype: expected int8 or fp8, found '%s'", t);
        for (int i = 0; i < *n; i++)
            if (out[i] == d)
                return !cli_error(cmd, "--dtype: '%s' given twice", t);
        if (*n < 2)
            out[(*n)++] = d;
    }
    if (*n == 0)
        return !cli_error(cmd, "--dtype: expected int8, fp8 or int8,fp8, found '%s'", s);
    return 1;
}

static const struct {
    const char *preset, *stem;
} stems[] = {{"bitnet-2b", "BitNet-2B"},   {"llama3.2-1b", "Llama3.2-1B"},
             {"llama3.2-3b", "Llama3.2-3B"}, {"qwen2.5-7b", "Qwen2.5-7B"},
             {"qwen2.5-14b", "Qwen2.5-14B"}};

int bcli_shapes(const char *cmd, const char *preset, const char *model, ss_proj_shape out[4],
                char *name, size_t n) {
    if (!!preset == !!model)
        return !cli_error(cmd, "exactly one of --preset NAME and --model DIR is required");
    if (preset) {
        if (ss_preset_shapes(preset, out) != SS_OK)
            return !cli_lib_error(cmd, SS_EINVAL);
        snprintf(name, n, "%s", preset);
        for (size_t i = 0; i < sizeof stems / sizeof *stems; i++)
            if (!strcmp(preset, stems[i].preset))
                snprintf(name, n, "%s", stems[i].stem);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model);
    ss_model_config c;
    ss_status s = ss_model_config_load(path, &c);
    if (s == SS_OK)
        s = ss_model_shapes(&c, out);
    if (s != SS_OK)
        return !cli_lib_error(cmd, s);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", model);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/')
        tmp[--l] = '\0';
    snprintf(name, n, "%s", basename(tmp));
    return 1;
}

int bcli_check_outputs(const char *cmd, const char *out, const char *tuning_dir, const char *model) {
    const char *what[2] = {"--out", "--tuning-dir"}, *dir[2] = {out, tuning_dir};
    for (int i = 0; i < 2; i++) {
        ss_status s = SS_OK;
        if (dir[i] && (s = ss_outdir_check_writable(dir[i], what[i])) == SS_OK && model)
            s = ss_outdir_check_input(dir[i], model, 0);
        if (s != SS_OK)
            return !cli_lib_error(cmd, s);
    }
    return 1;
}

int bcli_context(const char *cmd, const cli_backend *be, const char *device, ss_context **out) {
    long long dev = 0;
    if (device && !cli_parse_i64(device, 0, 255, &dev))
        return !cli_error(cmd, "--device: expected a CUDA ordinal 0..255, found '%s'", device);
    int gpu = be->gpu >= 0 ? be->gpu : ss_cuda_device_count() > 0;
    ss_status s = ss_context_check_device("--backend gpu", gpu ? (int)dev : -1);
    if (s == SS_OK)
        s = ss_context_create(gpu ? (int)dev : -1, out);
    if (s != SS_OK)
        return !cli_lib_error(cmd, s);
    return 1;
}

void bcli_out_init(bcli_out *o, const char *cmd, int quiet) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->quiet = quiet;
    o->tty = isatty(fileno(stdout));
    o->last_s = -1e9;
}

void bcli_end_line(bcli_out *o) {
    if (o->drawn) {
        fputc('\n', stdout);
        o->drawn = 0;
    }
}

static void hms(double s, char *buf, size_t n) {
    if (s < 0) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void bcli_progress(void *user, const ss_tune_progress *p) {
    bcli_out *o = user;
    if (o->quiet)
        return;
    double now = ss_monotonic_s();
    /* a terminal redraws at most ~10/s; a log gets one line every 2 s */
    if (now - o->last_s < (o->tty ? 0.1 : 2.0))
        return;
    o->last_s = now;
    char el[32], eta[32];
    hms(p->elapsed_s, el, sizeof el);
    hms(p->eta_s, eta, sizeof eta);
    char line[512];
    if (p->total > 1)
        snprintf(line, sizeof line, "%s %d/%d  %s  [%s]  elapsed %s  ETA %s", o->cmd, p->index + 1,
                 p->total, p->what, p->candidate ? p->candidate : "", el, eta);
    else
        snprintf(line, sizeof line, "%s  %s  [%s]", o->cmd, p->what,
                 p->candidate ? p->candidate : "");
    if (o->tty) {
        printf("\r%-100.160s", line);
        o->drawn = 1;
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
}

void bcli_log(void *user, const char *line) {
    bcli_out *o = user;
    bcli_end_line(o);
    printf("%s\n", line);
    fflush(stdout);
}

// --- tune -----------------------------------------------------------------------------------

static void usage(FILE *f) {
    fprintf(f,
            "usage: slidesparse tune (--preset NAME | --model DIR) [options]\n"
            "  Searches the fastest GEMM algorithm per (shape, dtype, M) and stores it in\n"
            "  <tuning-dir>/<GPU>_cc<cc>_<toolchain>/tuning.json (reused by every later run).\n"
            "  coarse: cuBLASLt dense + quant_only; fine: cuSPARSELt + quant_slide + dequant_bias.\n"
            "  --preset NAME      bitnet-2b, llama3.2-1b, llama3.2-3b, qwen2.5-7b, qwen2.5-14b, tiny-*\n"
            "  --model DIR        shapes from DIR/config.json\n"
            "  --dtype LIST       int8,fp8 (default both; FP8 skipped below cc 8.9)\n"
            "  --stage LIST       coarse,fine (default both)\n"
            "  --sparsity LIST    fine-stage patterns (default 2_4,2_6,2_8,2_10)\n"
            CLI_SPARSITY_HELP
            "  --m-coarse LIST    default 256,1024,4096,16384,32768\n"
            "  --m-fine LIST      default 64,128,...,32768\n"
            "  --tuning-dir DIR   default ./tuning\n"
            CLI_BACKEND_HELP
            "                     (cpu: one candidate, timed; cublaslt / cusparselt: the default\n"
            "                     coarse / fine libraries; sm90sp, sm90dense: as --sm90sp, --sm90dense)\n"
            "  --device N         CUDA device (default 0)\n"
            "  --warmup N --repeat N   per candidate (default 25 / 50 on a GPU, 2 / 5 on the CPU)\n"
            "  --no-flush         do not flush L2 between iterations\n"
            "  --candidates       print every timed candidate (the table keeps the top 3)\n"
            "  --retune           re-time entries the table already holds\n"
            "  --sm90sp           fine stage on the sm90sp backend (CUTLASS SM90 2:4, INT8 / FP8)\n"
            "  --sm90dense        coarse stage on the sm90dense backend (its dense twin)\n"
            "  --quiet            no progress lines\n");
}

int cmd_tune(int argc, char **argv) {
    const char *preset = NULL, *model = NULL, *dt = "int8,fp8", *stage = "coarse,fine",
               *sp = "2_4,2_6,2_8,2_10", *mc = NULL, *mf = NULL, *root = "tuning", *backend = NULL,
               *device = NULL, *warm = NULL, *rep = NULL;
    int quiet = 0, retune = 0, no_flush = 0, candidates = 0, sm90sp = 0, sm90dense = 0;
    const cli_option opts[] = {
        CLI_OPT("--preset", &preset), CLI_OPT("--model", &model), CLI_OPT("--dtype", &dt),
        CLI_OPT("--stage", &stage), CLI_OPT("--sparsity", &sp), CLI_OPT("--m-coarse", &mc),
        CLI_OPT("--m-fine", &mf), CLI_OPT("--tuning-dir", &root), CLI_OPT("--backend", &backend),
        CLI_OPT("--device", &device), CLI_OPT("--warmup", &warm), CLI_OPT("--repeat", &rep),
        CLI_FLAG("--quiet", &quiet), CLI_FLAG("--retune", &retune),
        CLI_FLAG("--no-flush", &no_flush), CLI_FLAG("--candidates", &candidates), CLI_FLAG("--sm90sp", &sm90sp), CLI_FLAG("--sm90dense", &sm90dense),
        CLI_END,
    };
    int parsed = cli_parse("tune", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    ss_proj_shape shapes[4];
    char name[256];
    ss_dtype dtypes[2];
    ss_pattern pats[BCLI_MAX_LIST];
    int64_t m_c[BCLI_MAX_LIST], m_f[BCLI_MAX_LIST];
    int nd = 0, np = 0, nmc = 0, nmf = 0;
    long long w = 25, r = 50;
    cli_backend be;
    if (!cli_backend_parse("tune", backend, &be))
        return 2;
    sm90sp |= be.library == SS_BACKEND_SM90SP;
    sm90dense |= be.library == SS_BACKEND_SM90DENSE;
    if (!bcli_shapes("tune", preset, model, shapes, name, sizeof name) ||
        !bcli_parse_dtypes("tune", dt, dtypes, &nd) || !bcli_parse_patterns("tune", sp, pats, &np) ||
        (mc && !bcli_parse_m("tune", "--m-coarse", mc, m_c, &nmc)) ||
        (mf && !bcli_parse_m("tune", "--m-fine", mf, m_f, &nmf)))
        return 2;
    if ((warm && !cli_parse_i64(warm, 1, 100000, &w)) || (rep && !cli_parse_i64(rep, 1, 100000, &r)))
        return cli_error("tune", "--warmup / --repeat: expected integers >= 1") + 1;
    int coarse = strstr(stage, "coarse") != NULL, fine = strstr(stage, "fine") != NULL;
    if (!coarse && !fine)
        return cli_error("tune", "--stage: expected coarse, fine or coarse,fine, found '%s'", stage) + 1;
    if (!bcli_check_outputs("tune", NULL, root, model))
        return 2;
    ss_context *ctx = NULL;
    if (!bcli_context("tune", &be, device, &ctx))
        return 1;
    if (ss_context_device(ctx) < 0) { /* CPU-sized defaults */
        w = warm ? w : 2;
        r = rep ? r : 5;
    }
    bcli_out out;
    bcli_out_init(&out, "tune", quiet);
    /* GEMM plans built before an algorithm is pinned read the same folder */
    (void)ss_context_set_tuning(ctx, root, NULL, NULL);
    ss_device_info di;
    char banner[2048];
    if (ss_device_info_get(ctx, 0, &di) == SS_OK && ss_device_banner(&di, banner, sizeof banner) == SS_OK)
        fputs(banner, stdout);
    ss_tune_opts o = {.ctx = ctx, .shapes = shapes, .n_shapes = 4, .dtypes = dtypes,
                      .n_dtypes = nd, .patterns = pats, .n_patterns = np, .coarse = coarse,
                      .fine = fine, .m_coarse = mc ? m_c : NULL, .n_m_coarse = nmc,
                      .m_fine = mf ? m_f : NULL, .n_m_fine = nmf, .root = root, .retune = retune,
                      .warmup = (int)w, .repeat = (int)r, .no_flush = no_flush, .seed = 1,
                      .log_candidates = candidates,
                      .progress = bcli_progress, .user = &out, .log = bcli_log,
                      .dense_backend = sm90dense ? SS_BACKEND_SM90DENSE : SS_BACKEND_CPU,
                      .sparse_backend = sm90sp ? SS_BACKEND_SM90SP : SS_BACKEND_CPU};
    if ((sm90sp || sm90dense) && ss_context_device(ctx) < 0)
        bcli_log(&out, "--sm90sp / --sm90dense: no GPU context, the CPU backend stands in");
    ss_tune_result res;
    double t0 = ss_monotonic_s();
    ss_status s = ss_tune_run(&o, &res);
    bcli_end_line(&out);
    ss_context_tuning_release(ctx); /* CPU contexts: linear.c does not */
    ss_context_destroy(ctx);
    if (s != SS_OK)
        return cli_lib_error("tune", s);
    printf("tune: %s: %d entries tuned, %d reused from the table, %d skipped, %d quant launches "
           "tuned in %.1f s -> %s\n", name, res.tuned, res.reused, res.skipped, res.launches_tuned,
           ss_monotonic_s() - t0, res.tuned + res.launches_tuned ? res.path : "(table unchanged)");
    return 0;
}
