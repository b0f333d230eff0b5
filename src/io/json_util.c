#include "io/json_util.h"

const char *ss_json_type_word(const json_t *v) {
    if (!v) /* a missing member: json_object_get's NULL reaches here from error paths */
        return "nothing (missing)";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}
