/* The OpenAI-compatible wire format of `slidesparse serve`: request bodies
 * parsed and validated, responses, Server-Sent-Events chunks and errors
 * formatted. No sockets and no engine here (tests/test_http_api.c checks it
 * alone).
 *
 * Requests (POST /v1/completions, POST /v1/chat/completions), JSON objects:
 *   model        string, required (the served model's name)
 *   prompt       string, required by /v1/completions
 *   messages     [{"role": "system"|"user"|"assistant", "content": string}, ...],
 *                required by /v1/chat/completions
 *   max_tokens   integer >= 1 (chat also reads max_completion_tokens)
 *   temperature  number in [0, 100] (default 1; 0 is greedy)
 *   top_p        number in (0, 1] (default 1)
 *   top_k        integer >= 0, or -1 (0 and -1: no limit; an extension)
 *   seed         integer >= 0 (default: drawn by the server)
 *   stop         string, or a list of at most HTTP_API_MAX_STOPS non-empty strings
 *   stream       bool; stream_options {"include_usage": bool}
 *   ignore_eos   bool (an extension: generate max_tokens tokens past EOS)
 *   n            1 when given
 * Other fields are ignored; null is the same as absent. Every violation is a
 * 400 naming the field. */
#ifndef SS_HTTP_API_H
#define SS_HTTP_API_H

#include <stddef.h>
#include <stdint.h>

#include "slidesparse.h"

#define HTTP_API_MAX_STOPS 16

typedef enum { HTTP_API_COMPLETION = 0, HTTP_API_CHAT = 1 } http_api_kind;

typedef struct {
    http_api_kind kind;
    char *model;
    char *prompt;               /* completions */
    ss_chat_message *messages;  // (n_messages) chat; role and content malloc'd
    int n_messages;
    int64_t max_tokens;         /* 0: not given */
    ss_sampling sampling;
    int has_seed;
    char *stops[HTTP_API_MAX_STOPS];
    int n_stops;
    int stream, include_usage, ignore_eos;
} http_api_request;

/* An HTTP status and the OpenAI error fields. */
typedef struct {
    int status;         /* 400, 404, 405, 413, 500, 503 */
    const char *type;   /* "invalid_request_error", "not_found_error", "server_error", ... */
    const char *code;   /* NULL, or e.g. "model_not_found" */
    const char *param;  /* NULL, or the offending field */
    char message[512];
} http_api_error;

/* Parses body (len bytes) as a request of kind k into *r (freed by
 * http_api_request_free, also after a failure). 0, or -1 with *e filled
 * (status 400). */
int http_api_request_parse(http_api_kind k, const char *body, size_t len, http_api_request *r, http_api_error *e);
void http_api_request_free(http_api_request *r);

/* Fills *e; returns -1 (so a caller can `return http_api_fail(...)`). */
int http_api_fail(http_api_error *e, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Every formatter returns a malloc'd NUL-terminated string, NULL when out
 * of memory (or for text that is not valid UTF-8). */

/* {"error": {"message", "type", "param", "code"}} */
char *http_api_error_json(const http_api_error *e);

typedef struct {
    http_api_kind kind;
    const char *id;      /* "cmpl-..." / "chatcmpl-..." */
    int64_t created;     /* Unix seconds */
    const char *model;
} http_api_meta;

typedef struct {
    int64_t prompt_tokens, completion_tokens;
} http_api_usage;

/* The whole response of a non-streamed request: choices[0] text (completion)
 * or message {role assistant, content} (chat), finish_reason ("stop" or
 * "length"), usage. */
char *http_api_response_json(const http_api_meta *m, const char *text, const char *finish_reason,
                             const http_api_usage *u);

/* One SSE event "data: {chunk}\n\n" of a streamed request: object
 * "text_completion" / "chat.completion.chunk", choices[0] with text or delta
 * (role "assistant" in the delta when role is set; content when text is not
 * NULL) and finish_reason (null when NULL). With u (and no choice) the
 * usage chunk that include_usage asks for. */
char *http_api_chunk_sse(const http_api_meta *m, const char *text, int role, const char *finish_reason,
                         const http_api_usage *u);
/* The last event of every stream. */
#define HTTP_API_SSE_DONE "data: [DONE]\n\n"

/* GET /health: {"status": "ok", "model", "running", "waiting", "peak_running",
 * "kv_free_blocks", "kv_total_blocks", "requests_served", "requests_cancelled"}. */
char *http_api_health_json(const char *model, int running, int waiting, int peak_running, int64_t kv_free,
                           int64_t kv_total, int64_t served, int64_t cancelled);

/* Once, before threads use the formatters (seeds jansson's hash function). */
void http_api_init(void);

/* GET /v1/models: one model, or (list 0) the model object alone. */
char *http_api_models_json(const char *model, int64_t created, int64_t max_model_len, int list);

#endif
