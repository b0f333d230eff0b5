/* The OpenAI-compatible wire format (the fields are listed in http_api.h). */
#include "http_api.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int http_api_fail(http_api_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = status;
    e->type = type;
    e->param = param;
    e->code = NULL;
    return -1;
}

#define BAD(e, param, ...) http_api_fail((e), 400, "invalid_request_error", (param), __VA_ARGS__)

// --- requests -----------------------------------------------------------------------------

void http_api_request_free(http_api_request *r) {
    free(r->model);
    free(r->prompt);
    for (int i = 0; i < r->n_messages; i++) {
        free((char *)r->messages[i].role);
        free((char *)r->messages[i].content);
    }
    free(r->messages);
    for (int i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    memset(r, 0, sizeof *r);
}

/* The field, NULL when absent or null. */
static json_t *field(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_null(v) ? NULL : v;
}

static int get_string(json_t *o, const char *k, char **out, http_api_error *e) {
    json_t *v = field(o, k);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return BAD(e, k, "'%s' must be a string", k);
    if (!(*out = strdup(json_string_value(v))))
        return http_api_fail(e, 500, "server_error", NULL, "out of memory");
    return 0;
}

static int get_number(json_t *o, const char *k, double lo, double hi, int lo_open, float *out, http_api_error *e) {
    json_t *v = field(o, k);
    if (!v)
        return 0;
    double x = json_number_value(v);
    if (!json_is_number(v) || !isfinite(x) || x < lo || (lo_open && x == lo) || x > hi)
        return BAD(e, k, "'%s' must be a number in %s%g, %g]", k, lo_open ? "(" : "[", lo, hi);
    *out = (float)x;
    return 0;
}

/* An integer in lo..hi; *given 1 when present. */
static int get_int(json_t *o, const char *k, long long lo, long long hi, int64_t *out, int *given, http_api_error *e) {
    json_t *v = field(o, k);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return BAD(e, k, "'%s' must be an integer in %lld..%lld", k, lo, hi);
    *out = json_integer_value(v);
    if (given)
        *given = 1;
    return 0;
}

static int get_bool(json_t *o, const char *k, int *out, http_api_error *e) {
    json_t *v = field(o, k);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return BAD(e, k, "'%s' must be true or false", k);
    *out = json_is_true(v);
    return 0;
}

static int add_stop(http_api_request *r, json_t *v, http_api_error *e) {
    if (!json_is_string(v) || json_string_length(v) == 0)
        return BAD(e, "stop", "'stop' must be a non-empty string or a list of them");
    if (r->n_stops == HTTP_API_MAX_STOPS)
        return BAD(e, "stop", "'stop' holds more than %d strings", HTTP_API_MAX_STOPS);
    if (!(r->stops[r->n_stops] = strdup(json_string_value(v))))
        return http_api_fail(e, 500, "server_error", NULL, "out of memory");
    r->n_stops++;
    return 0;
}

static int get_stops(json_t *o, http_api_request *r, http_api_error *e) {
    json_t *v = field(o, "stop"), *s;
    size_t i;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return add_stop(r, v, e);
    json_array_foreach(v, i, s) {
        if (add_stop(r, s, e))
            return -1;
    }
    return 0;
}

static int get_messages(json_t *o, http_api_request *r, http_api_error *e) {
    json_t *v = field(o, "messages"), *m;
    size_t i;
    if (!v)
        return BAD(e, "messages", "'messages' is required");
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 4096)
        return BAD(e, "messages", "'messages' must be a non-empty list (at most 4096) of {role, content}");
    if (!(r->messages = calloc(json_array_size(v), sizeof *r->messages)))
        return http_api_fail(e, 500, "server_error", NULL, "out of memory");
    json_array_foreach(v, i, m) {
        json_t *role = json_is_object(m) ? json_object_get(m, "role") : NULL;
        json_t *content = json_is_object(m) ? json_object_get(m, "content") : NULL;
        if (!json_is_string(role) || !json_is_string(content))
            return BAD(e, "messages", "messages[%zu] must be an object with a string 'role' and 'content'", i);
        const char *rs = json_string_value(role);
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant"))
            return BAD(e, "messages", "messages[%zu]: role '%.32s' is not supported (system, user, assistant)", i,
                       rs);
        ss_chat_message *cm = &r->messages[r->n_messages++];
        cm->role = strdup(rs);
        cm->content = strdup(json_string_value(content));
        if (!cm->role || !cm->content)
            return http_api_fail(e, 500, "server_error", NULL, "out of memory");
    }
    return 0;
}

static int parse_fields(json_t *o, http_api_request *r, http_api_error *e) {
    int64_t n = 1, k = 0, seed = 0;
    json_t *so;
    if (get_string(o, "model", &r->model, e))
        return -1;
    if (!r->model)
        return BAD(e, "model", "'model' is required");
    if (r->kind == HTTP_API_COMPLETION) {
        if (field(o, "prompt") && !json_is_string(field(o, "prompt")))
            return BAD(e, "prompt", "'prompt' must be a string");
        if (get_string(o, "prompt", &r->prompt, e))
            return -1;
        if (!r->prompt)
            return BAD(e, "prompt", "'prompt' is required");
    } else if (get_messages(o, r, e)) {
        return -1;
    }
    if (get_int(o, "max_tokens", 1, INT32_MAX, &r->max_tokens, NULL, e) ||
        (r->kind == HTTP_API_CHAT && get_int(o, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens, NULL, e)) ||
        get_number(o, "temperature", 0, 100, 0, &r->sampling.temperature, e) ||
        get_number(o, "top_p", 0, 1, 1, &r->sampling.top_p, e) ||
        get_int(o, "top_k", -1, 1 << 24, &k, NULL, e) || get_int(o, "seed", 0, INT64_MAX, &seed, &r->has_seed, e) ||
        get_int(o, "n", 1, 1, &n, NULL, e) || get_stops(o, r, e) || get_bool(o, "stream", &r->stream, e) ||
        get_bool(o, "ignore_eos", &r->ignore_eos, e))
        return -1;
    r->sampling.top_k = k < 0 ? 0 : (int32_t)k;
    r->sampling.seed = (uint64_t)seed;
    if ((so = field(o, "stream_options"))) {
        if (!json_is_object(so))
            return BAD(e, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, e))
            return -1;
    }
    return 0;
}

int http_api_request_parse(http_api_kind k, const char *body, size_t len, http_api_request *r, http_api_error *e) {
    json_error_t je;
    memset(r, 0, sizeof *r);
    r->kind = k;
    r->sampling = (ss_sampling){.temperature = 1, .top_k = 0, .top_p = 1};
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return BAD(e, NULL, "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc = json_is_object(o) ? parse_fields(o, r, e) : BAD(e, NULL, "the body must be a JSON object");
    json_decref(o);
    return rc;
}

// --- responses ------------------------------------------------------------------------------

/* Serializes and releases o (NULL stays NULL). */
static char *dump(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *http_api_error_json(const http_api_error *e) {
    return dump(json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", e->message, "type", e->type, "param",
                          e->param, "code", e->code));
}

static json_t *usage_json(const http_api_usage *u) {
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens));
}

/* {id, object, created, model, choices: [choice]} (choice and usage stolen; either may be NULL) */
static json_t *envelope(const http_api_meta *m, const char *object, json_t *choice, json_t *usage) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[]}", "id", m->id, "object", object, "created", (json_int_t)m->created,
                          "model", m->model, "choices");
    if (o && choice && json_array_append(json_object_get(o, "choices"), choice) != 0)
        o = (json_decref(o), NULL);
    if (o && usage && json_object_set(o, "usage", usage) != 0)
        o = (json_decref(o), NULL);
    json_decref(choice);
    json_decref(usage);
    return o;
}

/* A string, or null for NULL. */
static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

char *http_api_response_json(const http_api_meta *m, const char *text, const char *finish_reason,
                             const http_api_usage *u) {
    json_t *t = json_string(text);
    if (!t)
        return NULL;
    json_t *choice = m->kind == HTTP_API_CHAT
                         ? json_pack("{s:i,s:{s:s,s:o},s:n,s:o}", "index", 0, "message", "role", "assistant", "content",
                                     t, "logprobs", "finish_reason", str_or_null(finish_reason))
                         : json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "text", t, "logprobs", "finish_reason",
                                     str_or_null(finish_reason));
    if (!choice)
        return NULL;
    return dump(envelope(m, m->kind == HTTP_API_CHAT ? "chat.completion" : "text_completion", choice, usage_json(u)));
}

char *http_api_chunk_sse(const http_api_meta *m, const char *text, int role, const char *finish_reason,
                         const http_api_usage *u) {
    const char *object = m->kind == HTTP_API_CHAT ? "chat.completion.chunk" : "text_completion";
    json_t *choice = NULL;
    if (!u) {
        if (m->kind == HTTP_API_CHAT) {
            json_t *delta = json_object();
            if (delta && role)
                json_object_set_new(delta, "role", json_string("assistant"));
            if (delta && text && json_object_set_new(delta, "content", json_string(text)) != 0)
                delta = (json_decref(delta), NULL);
            choice = delta ? json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                                       str_or_null(finish_reason))
                           : NULL;
        } else {
            json_t *t = json_string(text ? text : "");
            choice = t ? json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "text", t, "logprobs", "finish_reason",
                                   str_or_null(finish_reason))
                       : NULL;
        }
        if (!choice)
            return NULL;
    }
    char *j = dump(envelope(m, object, choice, u ? usage_json(u) : NULL));
    if (!j)
        return NULL;
    size_t n = strlen(j) + 9;
    char *ev = malloc(n);
    if (ev)
        snprintf(ev, n, "data: %s\n\n", j);
    free(j);
    return ev;
}

char *http_api_models_json(const char *model, int64_t created, int64_t max_model_len, int list) {
    json_t *one = json_pack("{s:s,s:s,s:I,s:s,s:I}", "id", model, "object", "model", "created", (json_int_t)created,
                            "owned_by", "slidesparse", "max_model_len", (json_int_t)max_model_len);
    return dump(list && one ? json_pack("{s:s,s:[o]}", "object", "list", "data", one) : one);
}

char *http_api_health_json(const char *model, int running, int waiting, int peak_running, int64_t kv_free,
                           int64_t kv_total, int64_t served, int64_t cancelled) {
    return dump(json_pack("{s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:I,s:I}", "status", "ok", "model", model, "running", running,
                          "waiting", waiting, "peak_running", peak_running, "kv_free_blocks", (json_int_t)kv_free, "kv_total_blocks",
                          (json_int_t)kv_total, "requests_served", (json_int_t)served, "requests_cancelled",
                          (json_int_t)cancelled));
}

void http_api_init(void) { json_object_seed(0); }
