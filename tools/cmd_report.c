/* slidesparse report RESULTS_DIR: regenerates the run-all report from the
 * status JSON and the CSVs under the folder alone. */
#include "cli.h"

#include "slidesparse/pipeline.h"

int cmd_report(int argc, char **argv) {
    if (argc == 2 && (cli_flag(argv[1], "--help") || cli_flag(argv[1], "-h"))) {
        printf("usage: slidesparse report RESULTS_DIR\n"
               "  Rewrites <GPU>_report_<date>.md and plots/ in RESULTS_DIR (a run-all --out folder)\n"
               "  from its newest *_status.json and the benchmark CSVs under it.\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-')
        return cli_error("report", "expected one argument, the run-all results folder (see --help)") + 1;
    char path[1300];
    ss_status s = ss_pipe_report(argv[1], path, sizeof path);
    if (s != SS_OK)
        return cli_lib_error("report", s);
    printf("report: %s\n", path);
    return 0;
}
