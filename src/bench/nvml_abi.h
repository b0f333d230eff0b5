/* The few NVML declarations the clock sampler (clocks.c) needs, written out
 * here so that the build needs neither nvml.h nor libnvidia-ml: the library is
 * dlopen'ed at run time ("libnvidia-ml.so.1", installed with the driver).
 *
 * They follow the NVML C ABI of nvml.h as shipped with the CUDA toolkit /
 * driver (NVML API version 12, drivers R535 and later): the versioned entry
 * points nvmlInit_v2, nvmlDeviceGetHandleByPciBusId_v2 and
 * nvmlDeviceGetHandleByIndex_v2; nvmlDeviceGetCurrentClocksEventReasons (R535+)
 * with its older name nvmlDeviceGetCurrentClocksThrottleReasons as fallback;
 * nvmlFieldValue_t as laid out since the field API appeared (R375; scopeId
 * was called `unused` before R418 — same size and place). Every one of these
 * is stable ABI: NVML adds _vN names instead of changing a signature.
 */
#ifndef SS_BENCH_NVML_ABI_H
#define SS_BENCH_NVML_ABI_H

typedef int ss_nvml_return;              /* nvmlReturn_t */
typedef struct ss_nvml_device_st *ss_nvml_device; /* nvmlDevice_t (opaque pointer) */

#define SS_NVML_SUCCESS 0                /* NVML_SUCCESS */
#define SS_NVML_CLOCK_SM 1               /* nvmlClockType_t NVML_CLOCK_SM */

/* nvmlClocksEventReasons (formerly nvmlClocksThrottleReasons) bits */
#define SS_NVML_REASON_GPU_IDLE 0x1ull
#define SS_NVML_REASON_SW_POWER_CAP 0x4ull
#define SS_NVML_REASON_HW_SLOWDOWN 0x8ull
#define SS_NVML_REASON_SW_THERMAL 0x20ull
#define SS_NVML_REASON_HW_THERMAL 0x40ull
#define SS_NVML_REASON_HW_POWER_BRAKE 0x80ull
/* the reasons that mean "the clock is held down by power or heat" */
#define SS_NVML_REASONS_CAPPED                                                                  \
    (SS_NVML_REASON_SW_POWER_CAP | SS_NVML_REASON_HW_SLOWDOWN | SS_NVML_REASON_SW_THERMAL |     \
     SS_NVML_REASON_HW_THERMAL | SS_NVML_REASON_HW_POWER_BRAKE)

/* nvmlDeviceGetFieldValues: NVML_FI_DEV_POWER_INSTANT, the board's current
 * draw in mW (nvmlDeviceGetPowerUsage is a trailing 1 s average on Ampere and
 * later, except GA100, which says little about a timed loop of a few ms). */
#define SS_NVML_FI_DEV_POWER_INSTANT 186u

/* nvmlValueType_t */
enum {
    SS_NVML_VALUE_DOUBLE = 0,
    SS_NVML_VALUE_UINT = 1,
    SS_NVML_VALUE_ULONG = 2,
    SS_NVML_VALUE_ULONGLONG = 3,
    SS_NVML_VALUE_SLONGLONG = 4,
    SS_NVML_VALUE_SINT = 5,
    SS_NVML_VALUE_USHORT = 6,
};

typedef union { /* nvmlValue_t */
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} ss_nvml_value;

typedef struct { /* nvmlFieldValue_t */
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;          /* nvmlValueType_t */
    ss_nvml_return nvmlReturn;
    ss_nvml_value value;
} ss_nvml_field_value;

/* Function pointer types of the entry points clocks.c looks up with dlsym. */
typedef ss_nvml_return (*ss_nvml_init_fn)(void);                         /* nvmlInit_v2 */
typedef ss_nvml_return (*ss_nvml_shutdown_fn)(void);                     /* nvmlShutdown */
typedef const char *(*ss_nvml_error_string_fn)(ss_nvml_return);         /* nvmlErrorString */
typedef ss_nvml_return (*ss_nvml_by_pci_fn)(const char *, ss_nvml_device *);
                                                   /* nvmlDeviceGetHandleByPciBusId_v2 */
typedef ss_nvml_return (*ss_nvml_by_index_fn)(unsigned int, ss_nvml_device *);
                                                   /* nvmlDeviceGetHandleByIndex_v2 */
typedef ss_nvml_return (*ss_nvml_clock_fn)(ss_nvml_device, int, unsigned int *);
                                                   /* nvmlDeviceGetClockInfo (MHz) */
typedef ss_nvml_return (*ss_nvml_power_fn)(ss_nvml_device, unsigned int *);
                                                   /* nvmlDeviceGetPowerUsage (mW) */
typedef ss_nvml_return (*ss_nvml_reasons_fn)(ss_nvml_device, unsigned long long *);
                              /* nvmlDeviceGetCurrentClocksEventReasons / ...ThrottleReasons */
typedef ss_nvml_return (*ss_nvml_fields_fn)(ss_nvml_device, int, ss_nvml_field_value *);
                                                   /* nvmlDeviceGetFieldValues */

#endif
