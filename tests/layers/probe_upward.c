/* Compiled as a file of the linear layer (CMakeLists.txt, test layers_probe_upward):
 * linear may not use tune, so this include must not be found. */
#include "tune/fixture.h"
