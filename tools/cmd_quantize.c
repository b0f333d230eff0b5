/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_quantize(int argc, char **argv) { return cli_error("quantize", "not implemented yet"); }
