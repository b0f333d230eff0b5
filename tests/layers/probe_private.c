/* Compiled as a file of the tune layer (CMakeLists.txt, test layers_probe_private):
 * tune may use linear, but not a header private to src/linear, so this
 * include must not be found. */
#include "linear/stream_layout.h"
