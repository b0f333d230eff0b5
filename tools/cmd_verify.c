/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_verify(int argc, char **argv) { return cli_error("verify", "not implemented yet"); }
