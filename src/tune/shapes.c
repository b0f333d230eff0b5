/* The GEMM shapes of a model: per layer qkv (fused q+k+v rows), o, gate_up
 * (fused gate+up rows) and down, as (N, K) (SPEC §6). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/io.h"
#include "slidesparse/tune.h"

ss_status ss_model_shapes(const ss_model_config *c, ss_proj_shape out[4]) {
    if (!c || !out)
        return ss_fail(SS_EINVAL, "model shapes: config or out is NULL");
    int64_t h = c->hidden_size, in = c->intermediate_size, hd = c->head_dim;
    int64_t q = (int64_t)c->num_attention_heads * hd, kv = (int64_t)c->num_key_value_heads * hd;
    if (h <= 0 || in <= 0 || q <= 0 || kv <= 0)
        return ss_fail(SS_EINVAL, "model shapes: expected positive hidden, intermediate, heads and "
                       "head_dim, found hidden %lld intermediate %lld q %lld kv %lld",
                       (long long)h, (long long)in, (long long)q, (long long)kv);
    const ss_proj_shape s[4] = {
        {"qkv", q + 2 * kv, h}, {"o", h, q}, {"gate_up", 2 * in, h}, {"down", h, in}};
    memcpy(out, s, sizeof s);
    return SS_OK;
}

/* SPEC §6 lists these; two of them are not presets (no synth needed). */
static const struct {
    const char *name;
    ss_proj_shape s[4];
} builtin[] = {
    {"bitnet-2b", {{"qkv", 3840, 2560}, {"o", 2560, 2560}, {"gate_up", 13824, 2560}, {"down", 2560, 6912}}},
    {"llama3.2-1b", {{"qkv", 3072, 2048}, {"o", 2048, 2048}, {"gate_up", 16384, 2048}, {"down", 2048, 8192}}},
    {"llama3.2-3b", {{"qkv", 5120, 3072}, {"o", 3072, 3072}, {"gate_up", 16384, 3072}, {"down", 3072, 8192}}},
    {"qwen2.5-7b", {{"qkv", 4608, 3584}, {"o", 3584, 3584}, {"gate_up", 37888, 3584}, {"down", 3584, 18944}}},
    {"qwen2.5-14b", {{"qkv", 7168, 5120}, {"o", 5120, 5120}, {"gate_up", 27648, 5120}, {"down", 5120, 13824}}},
};
#define N_BUILTIN ((int)(sizeof builtin / sizeof builtin[0]))

ss_status ss_preset_shapes(const char *name, ss_proj_shape out[4]) {
    if (!out)
        return ss_fail(SS_EINVAL, "preset shapes: out is NULL");
    for (int i = 0; name && i < N_BUILTIN; i++)
        if (!strcmp(name, builtin[i].name)) {
            memcpy(out, builtin[i].s, sizeof builtin[i].s);
            return SS_OK;
        }
    ss_model_config c;
    if (name && ss_preset_config(name, &c) == SS_OK)
        return ss_model_shapes(&c, out);
    char list[512] = "";
    for (int i = 0; i < N_BUILTIN; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ", builtin[i].name);
    for (int i = 0; i < ss_preset_count(); i++) {
        const char *p = ss_preset_name(i);
        int dup = 0;
        for (int j = 0; j < N_BUILTIN; j++)
            dup |= !strcmp(p, builtin[j].name);
        if (!dup)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ", p);
    }
    if (strlen(list) >= 2)
        list[strlen(list) - 2] = '\0';
    return ss_fail(SS_EINVAL, "unknown preset '%s': expected one of %s", name ? name : "(null)",
                   list);
}
