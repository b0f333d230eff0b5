/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_synth(int argc, char **argv) { return cli_error("synth", "not implemented yet"); }
