/* convert (task 2): BF16 or quantized checkpoint -> one SlideSparse
 * checkpoint per 2_L pattern, all from a single read of the input. */
#include "transform.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

ss_status ss_convert_out_dir(const char *in_dir, const char *out_root, ss_pattern p, char *buf,
                             size_t n) {
    char base[256], pat[32];
    prep_basename(in_dir, base, sizeof base);
    if (!base[0] || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return ss_fail(SS_EINVAL, "%s: cannot name the output after this input directory", in_dir);
    ss_pattern_format(p, pat, sizeof pat);
    int w = snprintf(buf, n, "%s/%s-SlideSparse-%s", out_root && *out_root ? out_root
                                                                            : "checkpoints_slidesparse",
                     base, pat);
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "%s: output path too long", in_dir);
    return SS_OK;
}

ss_status ss_convert_checkpoint(const ss_convert_opts *o) {
    if (!o->in_dir || !*o->in_dir)
        return ss_fail(SS_EINVAL, "convert: input directory is required");
    if (o->n_patterns < 1 || o->n_patterns > SS_PREP_MAX_PATTERNS)
        return ss_fail(SS_EINVAL, "convert: expected 1..%d patterns, found %d", SS_PREP_MAX_PATTERNS,
                       o->n_patterns);
    if (o->dtype != SS_DTYPE_COUNT && o->dtype != SS_DTYPE_I8 && o->dtype != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "convert: dtype %s: expected I8 (int8) or F8_E4M3 (fp8)",
                       ss_dtype_name(o->dtype));
    char (*out)[PREP_PATH_MAX] = calloc(SS_PREP_MAX_PATTERNS, PREP_PATH_MAX);
    if (!out)
        return ss_fail(SS_ENOMEM, "convert: out of memory");
    prep_job job = {.cmd = "convert", .in_dir = o->in_dir, .n_out = o->n_patterns,
                    .dtype = o->dtype, .force = o->force, .progress = o->progress, .user = o->user,
                    .source = o->source};
    ss_status s = SS_OK;
    for (int i = 0; i < o->n_patterns && s == SS_OK; i++) {
        ss_pattern p = o->patterns[i];
        char name[32];
        if (p.z != 2 || p.l < 4 || p.l % 2)
            s = ss_fail(SS_EINVAL, "convert: pattern %s: expected 2_L with even L >= 4",
                        ss_pattern_format(p, name, sizeof name));
        for (int j = 0; j < i && s == SS_OK; j++)
            if (o->patterns[j].l == p.l)
                s = ss_fail(SS_EINVAL, "convert: pattern %s given twice",
                            ss_pattern_format(p, name, sizeof name));
        if (s == SS_OK)
            s = ss_convert_out_dir(o->in_dir, o->out_root, p, out[i], PREP_PATH_MAX);
        job.final_dir[i] = out[i];
        job.pat[i] = p;
    }
    if (s == SS_OK)
        s = prep_run(&job);
    free(out);
    return s;
}
