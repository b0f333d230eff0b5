/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_convert(int argc, char **argv) { return cli_error("convert", "not implemented yet"); }
