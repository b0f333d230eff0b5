/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_demo(int argc, char **argv) { return cli_error("demo", "not implemented yet"); }
