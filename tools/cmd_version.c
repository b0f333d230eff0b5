/* slidesparse version */
#include "cli.h"

#include <string.h>

int cmd_version(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help")) {
            printf("usage: slidesparse version\n  prints the slidesparse version and the build's GPU support\n");
            return 0;
        }
        return cli_error("version", "unexpected argument '%s'", argv[i]);
    }
    printf("slidesparse %s\n", SS_VERSION_STRING);
#ifdef SS_HAVE_CUDA
    printf("cuda: built in, %d device(s) visible\n", ss_cuda_device_count());
#else
    printf("cuda: not built (CPU reference only)\n");
#endif
#ifdef SS_HAVE_CUSPARSELT
    printf("cusparselt: built in\n");
#else
    printf("cusparselt: not built\n");
#endif
    return 0;
}
