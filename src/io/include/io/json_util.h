/* Internal: jansson helpers shared by the io layer's JSON readers
 * (config.json, the safetensors header). */
#ifndef SS_IO_JSON_UTIL_H
#define SS_IO_JSON_UTIL_H

#include <jansson.h>

/* "an object", "a string", "null", ...: what an error message says was found
 * ("nothing (missing)" for NULL, a member json_object_get did not find). */
const char *ss_json_type_word(const json_t *v);

#endif
