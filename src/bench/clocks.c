/* The SM clock / power / clock-event-reason sampler over a dlopen'ed NVML,
 * and the summary math of its readings (see clocks.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "nvml_abi.h"
#include "core/error.h"
#ifdef SS_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

// --- summary math (pure) --------------------------------------------------------------------

void ss_clock_stats_add(ss_clock_stats *st, const ss_clock_sample *s) {
    if (s->sm_mhz > 0) {
        st->min_mhz = st->n == 0 || s->sm_mhz < st->min_mhz ? s->sm_mhz : st->min_mhz;
        st->n++;
        st->sum_mhz += s->sm_mhz;
    }
    if (s->power_w >= 0) {
        st->n_power++;
        st->sum_w += s->power_w;
    }
    if (s->reasons_ok) {
        st->n_reasons++;
        st->n_capped += (s->reasons & SS_NVML_REASONS_CAPPED) != 0;
    }
}

ss_bench_clock ss_clock_stats_summary(const ss_clock_stats *st) {
    ss_bench_clock c = {.samples = st->n, .power_w = -1, .capped = -1};
    if (st->n == 0)
        return c;
    c.sm_mhz_mean = st->sum_mhz / st->n;
    c.sm_mhz_min = st->min_mhz;
    if (st->n_power > 0)
        c.power_w = st->sum_w / st->n_power;
    if (st->n_reasons > 0)
        c.capped = (double)st->n_capped / st->n_reasons;
    return c;
}

ss_bench_clock ss_clock_summarize(const ss_clock_sample *s, int n) {
    ss_clock_stats st = {0};
    for (int i = 0; i < n; i++)
        ss_clock_stats_add(&st, &s[i]);
    return ss_clock_stats_summary(&st);
}

/* the mean of x over both sides weighted by samples, where known (< 0: not) */
static double merge_mean(double xa, int na, double xb, int nb) {
    if (xa < 0 || na == 0)
        return nb > 0 ? xb : -1;
    if (xb < 0 || nb == 0)
        return xa;
    return (xa * na + xb * nb) / (na + nb);
}

ss_bench_clock ss_clock_merge(ss_bench_clock a, ss_bench_clock b) {
    if (a.samples <= 0)
        return b.samples > 0 ? b : a;
    if (b.samples <= 0)
        return a;
    ss_bench_clock c = {.samples = a.samples + b.samples};
    c.sm_mhz_mean = (a.sm_mhz_mean * a.samples + b.sm_mhz_mean * b.samples) / c.samples;
    c.sm_mhz_min = a.sm_mhz_min < b.sm_mhz_min ? a.sm_mhz_min : b.sm_mhz_min;
    c.power_w = merge_mean(a.power_w, a.samples, b.power_w, b.samples);
    c.capped = merge_mean(a.capped, a.samples, b.capped, b.samples);
    return c;
}

// --- NVML -----------------------------------------------------------------------------------------

struct ss_clocks {
    void *lib;
    ss_nvml_device dev;
    ss_nvml_shutdown_fn shutdown;
    ss_nvml_clock_fn clock;
    ss_nvml_power_fn power;     /* the 1 s average; used when the field is not served */
    ss_nvml_reasons_fn reasons;
    ss_nvml_fields_fn fields;   /* NULL: instantaneous power not available */
};

static void *sym(void *lib, const char *name) { return dlsym(lib, name); }

/* The NVML handle of the context's CUDA device: by PCI bus id, which stays
 * right under CUDA_VISIBLE_DEVICES; by ordinal when that lookup fails and the
 * ordinals can only agree — one visible CUDA device and no CUDA_VISIBLE_DEVICES
 * (CUDA numbers fastest first, NVML by bus: on several GPUs the index could
 * name another card, and a wrong card's clock is worse than none). */
static ss_nvml_return device_of(ss_context *ctx, void *lib, ss_nvml_device *dev) {
    int ord = ss_context_device(ctx), n_cuda = 0;
    ss_nvml_return r = -1;
#ifdef SS_HAVE_CUDA
    char bus[64];
    ss_nvml_by_pci_fn by_pci = (ss_nvml_by_pci_fn)sym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    if (by_pci && cudaDeviceGetPCIBusId(bus, (int)sizeof bus, ord) == cudaSuccess)
        r = by_pci(bus, dev);
    if (cudaGetDeviceCount(&n_cuda) != cudaSuccess)
        n_cuda = 0;
    (void)cudaGetLastError();
#endif
    ss_nvml_by_index_fn by_index = (ss_nvml_by_index_fn)sym(lib, "nvmlDeviceGetHandleByIndex_v2");
    if (r != SS_NVML_SUCCESS && by_index && n_cuda == 1 && ord == 0 && !getenv("CUDA_VISIBLE_DEVICES"))
        r = by_index(0u, dev);
    return r;
}

/* Whether the instantaneous power field is served on this GPU / driver. */
static int instant_power_ok(const ss_clocks *c) {
    if (!c->fields)
        return 0;
    ss_nvml_field_value v = {.fieldId = SS_NVML_FI_DEV_POWER_INSTANT};
    return c->fields(c->dev, 1, &v) == SS_NVML_SUCCESS && v.nvmlReturn == SS_NVML_SUCCESS;
}

ss_status ss_clocks_open(ss_context *ctx, ss_clocks **out, char *why, size_t n) {
    *out = NULL;
    if (ss_context_device(ctx) < 0) {
        snprintf(why, n, "not recorded: CPU backend");
        return SS_OK;
    }
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, n, "not recorded: %s", e ? e : "libnvidia-ml.so.1 not found");
        return SS_OK;
    }
    ss_clocks *c = calloc(1, sizeof *c);
    if (!c) {
        dlclose(lib);
        return ss_fail(SS_ENOMEM, "clocks: out of memory");
    }
    c->lib = lib;
    ss_nvml_init_fn init = (ss_nvml_init_fn)sym(lib, "nvmlInit_v2");
    ss_nvml_error_string_fn estr = (ss_nvml_error_string_fn)sym(lib, "nvmlErrorString");
    c->shutdown = (ss_nvml_shutdown_fn)sym(lib, "nvmlShutdown");
    c->clock = (ss_nvml_clock_fn)sym(lib, "nvmlDeviceGetClockInfo");
    c->power = (ss_nvml_power_fn)sym(lib, "nvmlDeviceGetPowerUsage");
    c->fields = (ss_nvml_fields_fn)sym(lib, "nvmlDeviceGetFieldValues");
    c->reasons = (ss_nvml_reasons_fn)sym(lib, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!c->reasons) /* drivers before R535 */
        c->reasons = (ss_nvml_reasons_fn)sym(lib, "nvmlDeviceGetCurrentClocksThrottleReasons");
    if (!init || !c->shutdown || !c->clock) {
        snprintf(why, n, "not recorded: libnvidia-ml.so.1 lacks nvmlInit_v2 / nvmlDeviceGetClockInfo");
        goto fail;
    }
    ss_nvml_return r = init();
    if (r != SS_NVML_SUCCESS) {
        snprintf(why, n, "not recorded: nvmlInit_v2: %s", estr ? estr(r) : "failed");
        c->shutdown = NULL; /* nothing to shut down */
        goto fail;
    }
    if ((r = device_of(ctx, lib, &c->dev)) != SS_NVML_SUCCESS) {
        snprintf(why, n, "not recorded: NVML has no handle for CUDA device %d: %s",
                 ss_context_device(ctx), estr ? estr(r) : "failed");
        goto fail;
    }
    if (!instant_power_ok(c))
        c->fields = NULL;
    snprintf(why, n, "NVML, sampled every ~1 ms during the timed iterations; power: %s%s",
             c->fields ? "instantaneous (NVML_FI_DEV_POWER_INSTANT)"
             : c->power ? "nvmlDeviceGetPowerUsage (a 1 s average on Ampere and later)"
                        : "not available",
             c->reasons ? "" : "; clock event reasons not available");
    *out = c;
    return SS_OK;
fail:
    ss_clocks_close(c);
    return SS_OK;
}

void ss_clocks_close(ss_clocks *c) {
    if (!c)
        return;
    if (c->shutdown)
        c->shutdown();
    if (c->lib)
        dlclose(c->lib);
    free(c);
}

static double field_number(const ss_nvml_field_value *v) {
    switch (v->valueType) {
    case SS_NVML_VALUE_DOUBLE: return v->value.dVal;
    case SS_NVML_VALUE_UINT: return v->value.uiVal;
    case SS_NVML_VALUE_ULONG: return (double)v->value.ulVal;
    case SS_NVML_VALUE_ULONGLONG: return (double)v->value.ullVal;
    case SS_NVML_VALUE_SLONGLONG: return (double)v->value.sllVal;
    case SS_NVML_VALUE_SINT: return v->value.siVal;
    case SS_NVML_VALUE_USHORT: return v->value.usVal;
    default: return -1;
    }
}

void ss_clocks_read(ss_clocks *c, ss_clock_sample *out) {
    *out = (ss_clock_sample){.power_w = -1};
    unsigned mhz = 0, mw = 0;
    if (c->clock(c->dev, SS_NVML_CLOCK_SM, &mhz) == SS_NVML_SUCCESS)
        out->sm_mhz = mhz;
    ss_nvml_field_value v = {.fieldId = SS_NVML_FI_DEV_POWER_INSTANT};
    if (c->fields && c->fields(c->dev, 1, &v) == SS_NVML_SUCCESS &&
        v.nvmlReturn == SS_NVML_SUCCESS && field_number(&v) >= 0)
        out->power_w = field_number(&v) / 1000.0; /* mW */
    else if (c->power && c->power(c->dev, &mw) == SS_NVML_SUCCESS)
        out->power_w = mw / 1000.0;
    if (c->reasons && c->reasons(c->dev, &out->reasons) == SS_NVML_SUCCESS)
        out->reasons_ok = 1;
}

void ss_clock_recorder_sample(void *user) {
    ss_clock_recorder *r = user;
    ss_clock_sample s;
    ss_clocks_read(r->clocks, &s);
    ss_clock_stats_add(&r->stats, &s);
}
