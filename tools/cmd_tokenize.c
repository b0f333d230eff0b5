/* slidesparse tokenize: text -> token ids, or ids -> text, with a model's
 * tokenizer.json (the same encoding `generate --prompt` feeds the model). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define MAX_IDS 65536

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse tokenize (--model DIR | --tokenizer FILE) (--text TEXT | --ids 1,2,3)\n"
               "                            [--add-special] [--chat] [--skip-special]\n"
               "  --text: prints the token ids of TEXT, comma-separated; --add-special adds the\n"
               "  tokenizer's special tokens (Llama 3: <|begin_of_text|>), --chat wraps TEXT in the\n"
               "  model family's user / assistant role markers first (and adds the special tokens).\n"
               "  --ids: prints the text the ids decode to (invalid UTF-8 as U+FFFD), then a newline;\n"
               "  --skip-special leaves special tokens out.\n");
}

static int encode(const char *cmd, const ss_tokenizer *t, const char *text, int add_special) {
    int32_t *ids;
    int64_t n;
    ss_status s = ss_tokenizer_encode(t, text, strlen(text), add_special, &ids, &n);
    if (s != SS_OK)
        return cli_lib_error(cmd, s);
    for (int64_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", (int)ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

static int decode(const char *cmd, const ss_tokenizer *t, const char *ids_s, int skip_special) {
    int32_t *ids = malloc(MAX_IDS * sizeof *ids);
    int64_t n;
    char *text = NULL;
    size_t len;
    int rc = 0;
    if (!ids)
        return cli_error(cmd, "out of memory");
    if (!cli_parse_ids(ids_s, ids, MAX_IDS, &n)) {
        cli_error(cmd, "--ids '%.64s': expected a non-empty comma-separated list of token ids (at most %d)", ids_s,
                  MAX_IDS);
        rc = 2;
    } else {
        ss_status s = ss_tokenizer_decode(t, ids, n, skip_special, &text, &len);
        if (s != SS_OK)
            rc = cli_lib_error(cmd, s);
        else
            fwrite(text, 1, len, stdout), printf("\n");
    }
    free(ids);
    free(text);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL, *ids = NULL;
    int add_special = 0, chat = 0, skip_special = 0;
    const cli_option opts[] = {
        CLI_OPT("--model", &model), CLI_OPT("--tokenizer", &file), CLI_OPT("--text", &text),
        CLI_OPT("--ids", &ids), CLI_FLAG("--add-special", &add_special), CLI_FLAG("--chat", &chat),
        CLI_FLAG("--skip-special", &skip_special), CLI_END,
    };
    int parsed = cli_parse("tokenize", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    if ((!model && !file) || !text == !ids) {
        cli_error("tokenize", "give --model DIR or --tokenizer FILE, and one of --text or --ids (see --help)");
        return 2;
    }
    if ((chat || add_special) && !text) {
        cli_error("tokenize", "--chat and --add-special go with --text");
        return 2;
    }
    ss_tokenizer *t = NULL;
    char *wrapped = NULL;
    ss_model_config cfg = {0};
    char cfg_path[4096];
    int32_t eot;
    int rc = cli_load_tokenizer("tokenize", model, file, &t);
    if (rc == 0 && chat && model) { /* the model type picks BitNet's template */
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", model);
        ss_status s = ss_model_config_load(cfg_path, &cfg);
        rc = s == SS_OK ? 0 : cli_lib_error("tokenize", s);
    }
    if (rc == 0 && chat && (rc = cli_chat_prompt("tokenize", t, cfg.model_type, text, &wrapped, &eot)) == 0)
        text = wrapped, add_special = 1;
    if (rc == 0)
        rc = text ? encode("tokenize", t, text, add_special) : decode("tokenize", t, ids, skip_special);
    free(wrapped);
    ss_tokenizer_destroy(t);
    return rc;
}
