/* quantize (task 1): BF16 checkpoint -> INT8 / FP8 checkpoint. BitNet
 * projections become ternary absmean per tensor, every other model's
 * per-channel absmax (include/slidesparse/quant.h). */
#include "transform.h"

#include "core/error.h"

ss_status ss_quantize_checkpoint(const ss_quantize_opts *o) {
    if (!o->in_dir || !*o->in_dir || !o->out_dir || !*o->out_dir)
        return ss_fail(SS_EINVAL, "quantize: input and output directories are required");
    if (o->dtype != SS_DTYPE_I8 && o->dtype != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "quantize: dtype %s: expected I8 (int8) or F8_E4M3 (fp8)",
                       ss_dtype_name(o->dtype));
    prep_job job = {.cmd = "quantize", .in_dir = o->in_dir, .n_out = 1, .dtype = o->dtype,
                    .require_bf16 = 1, .force = o->force, .progress = o->progress, .user = o->user};
    job.final_dir[0] = o->out_dir;
    job.pat[0] = SS_PATTERN_DENSE;
    return prep_run(&job);
}
