/* The wire format of `slidesparse serve` (tools/http_api.c): request parsing
 * and validation (defaults, every field's type and range, the 400s naming
 * the field), responses, SSE chunks and errors, each checked by parsing the
 * JSON back. */
#include "support/ss_test.h"

#include <jansson.h>
#include <string.h>

#include "http_api.h"

static int parse(http_api_kind k, const char *body, http_api_request *r, http_api_error *e) {
    memset(e, 0, sizeof *e);
    return http_api_request_parse(k, body, strlen(body), r, e);
}

/* body must be refused with 400 and a message holding needle. */
static void refused(http_api_kind k, const char *body, const char *needle) {
    http_api_request r;
    http_api_error e;
    if (parse(k, body, &r, &e) == 0)
        fail_msg("accepted: %s", body);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    if (!strstr(e.message, needle))
        fail_msg("%s: message '%s' lacks '%s'", body, e.message, needle);
    http_api_request_free(&r);
}

static void test_completion_defaults(void **st) {
    http_api_request r;
    http_api_error e;
    assert_int_equal(parse(HTTP_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"Hi\",\"unknown\":[1]}", &r, &e), 0);
    assert_string_equal(r.model, "m");
    assert_string_equal(r.prompt, "Hi");
    assert_int_equal(r.max_tokens, 0);
    assert_true(r.sampling.temperature == 1.0f && r.sampling.top_p == 1.0f && r.sampling.top_k == 0);
    assert_int_equal(r.has_seed, 0);
    assert_int_equal(r.n_stops, 0);
    assert_int_equal(r.stream, 0);
    http_api_request_free(&r);
}

static void test_completion_fields(void **st) {
    http_api_request r;
    http_api_error e;
    const char *body = "{\"model\":\"m\",\"prompt\":\"Hi\",\"max_tokens\":7,\"temperature\":0,\"top_p\":0.5,"
                       "\"top_k\":-1,\"seed\":42,\"stop\":[\"a\",\"bc\"],\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"ignore_eos\":true,\"n\":1,\"user\":null}";
    assert_int_equal(parse(HTTP_API_COMPLETION, body, &r, &e), 0);
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.sampling.temperature == 0.0f && r.sampling.top_p == 0.5f && r.sampling.top_k == 0);
    assert_int_equal(r.has_seed, 1);
    assert_int_equal(r.sampling.seed, 42);
    assert_int_equal(r.n_stops, 2);
    assert_string_equal(r.stops[1], "bc");
    assert_true(r.stream && r.include_usage && r.ignore_eos);
    http_api_request_free(&r);
    assert_int_equal(parse(HTTP_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"Hi\",\"stop\":\"x\",\"top_k\":5,"
                                                "\"temperature\":null}", &r, &e), 0);
    assert_int_equal(r.n_stops, 1);
    assert_string_equal(r.stops[0], "x");
    assert_int_equal(r.sampling.top_k, 5);
    assert_true(r.sampling.temperature == 1.0f); /* null is absent */
    http_api_request_free(&r);
}

static void test_chat_messages(void **st) {
    http_api_request r;
    http_api_error e;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief\"},"
                       "{\"role\":\"user\",\"content\":\"Hi\"}],\"max_completion_tokens\":3}";
    assert_int_equal(parse(HTTP_API_CHAT, body, &r, &e), 0);
    assert_int_equal(r.n_messages, 2);
    assert_string_equal(r.messages[0].role, "system");
    assert_string_equal(r.messages[1].content, "Hi");
    assert_int_equal(r.max_tokens, 3);
    http_api_request_free(&r);
}

static void test_bad_requests(void **st) {
    http_api_kind C = HTTP_API_COMPLETION, H = HTTP_API_CHAT;
    refused(C, "{\"model\":\"m\",\"prompt\":", "not valid JSON");
    refused(C, "", "not valid JSON");
    refused(C, "[1,2]", "must be a JSON object");
    refused(C, "{\"model\":\"m\",\"model\":\"n\",\"prompt\":\"x\"}", "not valid JSON"); /* duplicate key */
    refused(C, "{\"prompt\":\"x\"}", "'model' is required");
    refused(C, "{\"model\":3,\"prompt\":\"x\"}", "'model' must be a string");
    refused(C, "{\"model\":\"m\"}", "'prompt' is required");
    refused(C, "{\"model\":\"m\",\"prompt\":[1,2]}", "'prompt' must be a string");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}", "'max_tokens' must be an integer in 1..");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":\"5\"}", "'max_tokens'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":2.5}", "'max_tokens'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":-1}", "'temperature' must be a number in [0, 100]");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":\"hot\"}", "'temperature'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":0}", "'top_p' must be a number in (0, 1]");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"top_k\":-2}", "'top_k'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"seed\":-1}", "'seed'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"n\":2}", "'n'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":\"\"}", "'stop'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",1]}", "'stop'");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
               "\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}", "more than 16");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":1}", "'stream' must be true or false");
    refused(C, "{\"model\":\"m\",\"prompt\":\"x\",\"stream_options\":true}", "'stream_options'");
    refused(H, "{\"model\":\"m\"}", "'messages' is required");
    refused(H, "{\"model\":\"m\",\"messages\":[]}", "non-empty list");
    refused(H, "{\"model\":\"m\",\"messages\":\"hi\"}", "non-empty list");
    refused(H, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0] must be an object");
    refused(H, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},3]}", "messages[1]");
    refused(H, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}", "role 'tool'");
}

static json_t *load(const char *s) {
    assert_non_null(s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("not JSON: %s (%s)", s, je.text);
    return o;
}

static void test_error_json(void **st) {
    http_api_error e;
    assert_int_equal(http_api_fail(&e, 404, "invalid_request_error", "model", "no \"%s\"", "x"), -1);
    e.code = "model_not_found";
    char *s = http_api_error_json(&e);
    json_t *o = load(s);
    json_t *err = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "no \"x\"");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(err, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "model_not_found");
    json_decref(o);
    free(s);
}

static void test_responses(void **st) {
    http_api_meta m = {.kind = HTTP_API_COMPLETION, .id = "cmpl-1", .created = 1700000000, .model = "tiny"};
    http_api_usage u = {5, 3};
    char *s = http_api_response_json(&m, "h\xc3\xa9llo \"q\"", "length", &u);
    json_t *o = load(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
    assert_string_equal(json_string_value(json_object_get(o, "id")), "cmpl-1");
    assert_int_equal(json_integer_value(json_object_get(o, "created")), 1700000000);
    json_t *c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "text")), "h\xc3\xa9llo \"q\"");
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
    json_t *us = json_object_get(o, "usage");
    assert_int_equal(json_integer_value(json_object_get(us, "prompt_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(us, "completion_tokens")), 3);
    assert_int_equal(json_integer_value(json_object_get(us, "total_tokens")), 8);
    json_decref(o);
    free(s);
    m.kind = HTTP_API_CHAT;
    s = http_api_response_json(&m, "hi", "stop", &u);
    o = load(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "hi");
    json_decref(o);
    free(s);
    assert_null(http_api_response_json(&m, "\xff", "stop", &u)); /* not UTF-8 */
}

/* The JSON of one "data: {...}\n\n" event. */
static json_t *event(char *ev) {
    assert_non_null(ev);
    size_t n = strlen(ev);
    assert_true(n > 8 && strncmp(ev, "data: ", 6) == 0 && strcmp(ev + n - 2, "\n\n") == 0);
    assert_null(memchr(ev, '\n', n - 2)); /* one line */
    json_t *o = load(ev + 6);
    free(ev);
    return o;
}

static void test_sse_chunks(void **st) {
    http_api_meta m = {.kind = HTTP_API_CHAT, .id = "chatcmpl-1", .created = 1, .model = "tiny"};
    json_t *o = event(http_api_chunk_sse(&m, "", 1, NULL, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion.chunk");
    json_t *c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "role")), "assistant");
    assert_true(json_is_null(json_object_get(c, "finish_reason")));
    json_decref(o);
    o = event(http_api_chunk_sse(&m, "a\nb", 0, NULL, NULL)); /* a newline stays escaped in one line */
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "content")), "a\nb");
    assert_null(json_object_get(json_object_get(c, "delta"), "role"));
    json_decref(o);
    o = event(http_api_chunk_sse(&m, NULL, 0, "stop", NULL));
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_int_equal(json_object_size(json_object_get(c, "delta")), 0);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
    json_decref(o);
    http_api_usage u = {4, 2};
    o = event(http_api_chunk_sse(&m, NULL, 0, NULL, &u));
    assert_int_equal(json_array_size(json_object_get(o, "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "usage"), "total_tokens")), 6);
    json_decref(o);
    m.kind = HTTP_API_COMPLETION;
    o = event(http_api_chunk_sse(&m, "xy", 0, NULL, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "text")), "xy");
    json_decref(o);
    assert_string_equal(HTTP_API_SSE_DONE, "data: [DONE]\n\n");
}

static void test_models_and_health(void **st) {
    char *s = http_api_models_json("tiny", 5, 128, 1);
    json_t *o = load(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "list");
    json_t *d = json_array_get(json_object_get(o, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "id")), "tiny");
    assert_int_equal(json_integer_value(json_object_get(d, "max_model_len")), 128);
    json_decref(o);
    free(s);
    s = http_api_health_json("tiny", 1, 2, 3, 30, 32, 7, 1);
    o = load(s);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(o, "kv_free_blocks")), 30);
    assert_int_equal(json_integer_value(json_object_get(o, "peak_running")), 3);
    json_decref(o);
    free(s);
}

int main(void) {
    http_api_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_defaults), cmocka_unit_test(test_completion_fields),
        cmocka_unit_test(test_chat_messages),       cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_error_json),          cmocka_unit_test(test_responses),
        cmocka_unit_test(test_sse_chunks),          cmocka_unit_test(test_models_and_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
