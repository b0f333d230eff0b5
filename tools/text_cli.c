/* The tokenizer steps shared by `generate --prompt` and `tokenize`. */
#include "cli.h"

#include <unistd.h>

int cli_load_tokenizer(const char *cmd, const char *dir, const char *file, ss_tokenizer **out) {
    char path[4096];
    if (!file) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (access(path, F_OK) != 0) {
            cli_error(cmd, "%s has no tokenizer.json (give one with --tokenizer FILE)", dir);
            return 2;
        }
        file = path;
    }
    ss_status s = ss_tokenizer_load(file, out);
    return s == SS_OK ? 0 : cli_lib_error(cmd, s);
}

int cli_chat_prompt(const char *cmd, const ss_tokenizer *t, const char *model_type, const char *text,
                    char **wrapped, int32_t *eot) {
    ss_status s = ss_tokenizer_chat_prompt(t, ss_tokenizer_chat_format(t, model_type), text, wrapped, eot);
    if (s == SS_OK)
        return 0;
    cli_lib_error(cmd, s);
    return 2; /* --chat does not apply to this tokenizer: a usage error */
}
