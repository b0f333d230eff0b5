/* slidesparse serve: an OpenAI-compatible HTTP server over the
 * continuous-batching engine (libmicrohttpd, one thread per connection; the
 * engine thread of http_engine.c batches every connection's requests).
 *   POST /v1/completions, POST /v1/chat/completions   JSON, or SSE with "stream"
 *   GET  /v1/models, /v1/models/NAME, /health
 * The wire format is in http_api.h. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#ifdef SS_HAVE_MICROHTTPD
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_api.h"
#include "http_engine.h"
#endif

#define DEFAULT_PORT 8000
#define MAX_BODY_BYTES (4u << 20)

static void usage(FILE *f) {
    fprintf(f,
            "usage: slidesparse serve --model DIR [--host ADDR] [--port N] [--backend B] [--device I]\n"
            "                         [--tokenizer FILE] [--served-model-name NAME] [--max-num-seqs S]\n"
            "                         [--max-num-batched-tokens T] [--kv-memory-mb MB] [--kv-dtype bf16|fp8]\n"
            "  An OpenAI-compatible HTTP server: POST /v1/completions and /v1/chat/completions (JSON,\n"
            "  or Server-Sent Events with \"stream\": true), GET /v1/models and /health. Requests of\n"
            "  every connection are batched by the continuous-batching scheduler: at most S sequences\n"
            "  (default 16) and T tokens (default 512, >= S) per step. Fields, errors and examples:\n"
            "  docs/USAGE.md.\n"
            "  --host ADDR: the address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every\n"
            "    interface). --port N: default %d; 0 takes a free port. The line \"listening on\n"
            "    http://ADDR:PORT\" goes to stdout once the model is loaded.\n"
            "  --served-model-name: the name requests give as \"model\" (default: DIR's base name).\n"
            "  --kv-memory-mb: the KV pool (default: S sequences of the whole context).\n"
            "  --kv-dtype bf16|fp8 (default bf16): the KV cache's element type, as in generate.\n"
            "  The text is that of `generate --prompt` (chat: `--chat`, in the tokenizer's role\n"
            "  markers); SIGINT / SIGTERM stop the server: requests in flight end with 503.\n" CLI_BACKEND_HELP
            "                     (default cpu, which runs every checkpoint; auto and gpu: cusparselt\n"
            "                     for SlideSparse checkpoints, cublaslt for dense ones)\n",
            DEFAULT_PORT);
}

#ifndef SS_HAVE_MICROHTTPD

int cmd_serve(int argc, char **argv) {
    if (argc > 1 && (cli_flag(argv[1], "--help") || cli_flag(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    return cli_error("serve", "built without libmicrohttpd: install libmicrohttpd-dev (scripts/deps.sh) and "
                              "rebuild");
}

#else

// --- the server ---------------------------------------------------------------------------

typedef struct {
    struct MHD_Daemon *daemon;
    http_engine *engine;
    const char *model;  /* the served name */
    int64_t created;    /* Unix seconds at start */
    pthread_mutex_t mu; /* the id counter and the open streams */
    uint64_t n_ids;
    int open_streams;   /* streamed responses MHD still holds (stream_free not yet run) */
} server;

/* SIGINT / SIGTERM: the main thread stops the server. */
static volatile sig_atomic_t g_stop;
static void on_stop(int sig) { g_stop = sig; }

/* One connection's request: the body as it arrives. */
typedef struct {
    char *body; // (len)
    size_t len, cap;
    int too_large;
    int answered; /* a response was queued at the headers (413): the body is only drained */
} request_state;

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *ctype, char *text,
                                 const char *allow) {
    if (!text) {
        static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
        text = strdup(oom);
        status = 500;
        if (!text)
            return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, char *json) {
    return send_text(c, status, "application/json", json, NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, const http_api_error *e, const char *allow) {
    return send_text(c, e->status, "application/json", http_api_error_json(e), allow);
}

static void log_request(const char *method, const char *url, int status, const http_api_usage *u, const char *how) {
    fprintf(stderr, "serve: %s %s %d", method, url, status);
    if (u)
        fprintf(stderr, ": %lld prompt + %lld completion tokens", (long long)u->prompt_tokens,
                (long long)u->completion_tokens);
    if (how)
        fprintf(stderr, ", %s", how);
    fputc('\n', stderr);
}

// --- streaming --------------------------------------------------------------------------------

typedef struct {
    server *sv;
    http_job *job;
    http_api_meta meta;
    char id[48];
    int include_usage;
    size_t sent;        /* text bytes taken from the job */
    char *pending;      // (n_pending) SSE bytes not yet handed to MHD
    size_t n_pending, at;
    int role_sent, ended;
    http_api_usage usage;
    const char *url;    /* a string literal: MHD's url may be gone when stream_free runs */
    const char *how;    /* the finish reason for the log, or why */
    char why[sizeof ((http_api_error *)0)->message];
    int status;
} stream_state;

/* Appends ev (taken) to the pending bytes; 0 when out of memory. */
static int pend(stream_state *s, char *ev) {
    if (!ev)
        return 0;
    size_t n = strlen(ev);
    char *p = realloc(s->pending, s->n_pending + n + 1);
    if (!p) {
        free(ev);
        return 0;
    }
    memcpy(p + s->n_pending, ev, n + 1);
    s->pending = p;
    s->n_pending += n;
    free(ev);
    return 1;
}

/* The next events: the role (chat, first), new text, and at the end the
 * finish reason (or an error event), the usage when asked, [DONE]. */
static int next_events(stream_state *s) {
    if (s->meta.kind == HTTP_API_CHAT && !s->role_sent) {
        s->role_sent = 1;
        return pend(s, http_api_chunk_sse(&s->meta, "", 1, NULL, NULL));
    }
    http_job_update u;
    http_job_next(s->job, &s->sent, &u);
    int ok = u.text != NULL;
    if (ok && u.text[0])
        ok = pend(s, http_api_chunk_sse(&s->meta, u.text, 0, NULL, NULL));
    free(u.text);
    if (!u.done)
        return ok;
    s->ended = 1;
    s->usage = u.usage;
    if (u.error.status) {
        s->status = u.error.status;
        snprintf(s->why, sizeof s->why, "%s", u.error.message);
        s->how = s->why;
        char *j = http_api_error_json(&u.error), *ev = j ? malloc(strlen(j) + 9) : NULL;
        if (ev)
            sprintf(ev, "data: %s\n\n", j);
        free(j);
        ok = ok && pend(s, ev);
    } else {
        s->how = u.finish_reason;
        ok = ok && pend(s, http_api_chunk_sse(&s->meta, NULL, 0, u.finish_reason, NULL));
        if (ok && s->include_usage)
            ok = pend(s, http_api_chunk_sse(&s->meta, NULL, 0, NULL, &u.usage));
    }
    return ok && pend(s, strdup(HTTP_API_SSE_DONE));
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *s = cls;
    while (s->at == s->n_pending) {
        free(s->pending);
        s->pending = NULL;
        s->n_pending = s->at = 0;
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!next_events(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->n_pending - s->at < max ? s->n_pending - s->at : max;
    memcpy(buf, s->pending + s->at, n);
    s->at += n;
    return (ssize_t)n;
}

/* MHD is done with the response (sent, or the client left): a job still
 * running is cancelled. */
static void stream_free(void *cls) {
    stream_state *s = cls;
    int gone = !s->ended || s->at < s->n_pending;
    log_request("POST", s->url, gone ? 499 : s->status, &s->usage,
                gone ? "stream cancelled: the client disconnected" : s->how);
    http_job_release(s->job);
    pthread_mutex_lock(&s->sv->mu);
    s->sv->open_streams--;
    pthread_mutex_unlock(&s->sv->mu);
    free(s->pending);
    free(s);
}

static int open_streams(server *sv) {
    pthread_mutex_lock(&sv->mu);
    int n = sv->open_streams;
    pthread_mutex_unlock(&sv->mu);
    return n;
}

// --- routes -----------------------------------------------------------------------------------

static void make_meta(server *sv, http_api_kind k, char *id, size_t n, http_api_meta *m) {
    pthread_mutex_lock(&sv->mu);
    uint64_t serial = ++sv->n_ids;
    pthread_mutex_unlock(&sv->mu);
    snprintf(id, n, "%s-%llx%06llx", k == HTTP_API_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)sv->created,
             (unsigned long long)serial);
    *m = (http_api_meta){.kind = k, .id = id, .created = (int64_t)time(NULL), .model = sv->model};
}

static enum MHD_Result generate(server *sv, struct MHD_Connection *c, const char *url, http_api_kind k,
                                const request_state *rs) {
    http_api_request r;
    http_api_error e;
    http_job *job = NULL;
    enum MHD_Result ok;
    if (http_api_request_parse(k, rs->body ? rs->body : "", rs->len, &r, &e) != 0)
        goto refused;
    if (strcmp(r.model, sv->model) != 0) {
        http_api_fail(&e, 404, "invalid_request_error", "model", "the model '%.200s' does not exist (this server "
                      "serves '%.200s')", r.model, sv->model);
        e.code = "model_not_found";
        goto refused;
    }
    if (http_engine_submit(sv->engine, &r, &job, &e) != 0)
        goto refused;
    if (r.stream) {
        stream_state *s = calloc(1, sizeof *s);
        struct MHD_Response *resp = NULL;
        if (s) {
            s->sv = sv, s->job = job, s->include_usage = r.include_usage, s->status = 200;
            make_meta(sv, k, s->id, sizeof s->id, &s->meta);
            s->url = k == HTTP_API_CHAT ? "/v1/chat/completions" : "/v1/completions";
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        }
        http_api_request_free(&r);
        if (!resp) {
            free(s);
            http_job_release(job);
            http_api_fail(&e, 500, "server_error", NULL, "out of memory");
            return send_error(c, &e, NULL);
        }
        pthread_mutex_lock(&sv->mu);
        sv->open_streams++; /* stream_free takes it back */
        pthread_mutex_unlock(&sv->mu);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp); /* stream_free runs when MHD lets go of it */
        return ok;
    }
    /* Not streamed: wait for the end. */
    http_api_request_free(&r);
    http_job_update u = {0};
    size_t sent = 0, len = 0;
    char *text = NULL;
    do {
        free(u.text);
        http_job_next(job, &sent, &u);
        size_t n = u.text ? strlen(u.text) : 0;
        char *t = realloc(text, len + n + 1);
        if (t) {
            memcpy(t + len, u.text ? u.text : "", n + 1);
            text = t, len += n;
        }
    } while (!u.done);
    free(u.text);
    http_job_release(job);
    if (u.error.status) {
        log_request("POST", url, u.error.status, &u.usage, u.error.message);
        free(text);
        return send_error(c, &u.error, NULL);
    }
    char id[48];
    http_api_meta m;
    make_meta(sv, k, id, sizeof id, &m);
    char *json = http_api_response_json(&m, text ? text : "", u.finish_reason, &u.usage);
    free(text);
    log_request("POST", url, 200, &u.usage, u.finish_reason);
    return send_json(c, 200, json);
refused:
    http_api_request_free(&r);
    log_request("POST", url, e.status, NULL, e.message);
    return send_error(c, &e, NULL);
}

static enum MHD_Result health(server *sv, struct MHD_Connection *c) {
    http_engine_stats st;
    http_engine_get_stats(sv->engine, &st);
    return send_json(c, 200, http_api_health_json(sv->model, st.running, st.waiting, st.peak_running, st.kv_free_blocks,
                                                  st.kv_total_blocks, st.served, st.cancelled));
}

/* Every request, once its body is in. */
static enum MHD_Result route(server *sv, struct MHD_Connection *c, const char *url, const char *method,
                             const request_state *rs) {
    http_api_error e;
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    http_api_kind kind = !strcmp(url, "/v1/chat/completions") ? HTTP_API_CHAT : HTTP_API_COMPLETION;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions")) {
        if (!post) {
            http_api_fail(&e, 405, "invalid_request_error", NULL, "%s %s: use POST", method, url);
            return send_error(c, &e, "POST");
        }
        if (rs->too_large) {
            http_api_fail(&e, 413, "invalid_request_error", NULL, "the body is larger than %u bytes",
                          MAX_BODY_BYTES);
            return send_error(c, &e, NULL);
        }
        return generate(sv, c, url, kind, rs);
    }
    int models = !strcmp(url, "/v1/models"), one = !strncmp(url, "/v1/models/", 11);
    if (models || one || !strcmp(url, "/health")) {
        if (!get) {
            http_api_fail(&e, 405, "invalid_request_error", NULL, "%s %s: use GET", method, url);
            return send_error(c, &e, "GET, HEAD");
        }
        if (!strcmp(url, "/health"))
            return health(sv, c);
        if (one && strcmp(url + 11, sv->model) != 0) {
            http_api_fail(&e, 404, "invalid_request_error", "model", "the model '%.200s' does not exist", url + 11);
            e.code = "model_not_found";
            return send_error(c, &e, NULL);
        }
        return send_json(c, 200, http_api_models_json(sv->model, sv->created,
                                                      http_engine_config_of(sv->engine)->max_position_embeddings,
                                                      models));
    }
    http_api_fail(&e, 404, "invalid_request_error", NULL, "no route %s %s (POST /v1/completions, "
                  "POST /v1/chat/completions, GET /v1/models, GET /health)", method, url);
    return send_error(c, &e, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    request_state *rs = *con_cls;
    if (!rs) { /* the headers are in */
        if (!(rs = calloc(1, sizeof *rs)))
            return MHD_NO;
        *con_cls = rs;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > MAX_BODY_BYTES) { /* refused before the body is read */
            rs->too_large = rs->answered = 1;
            return route(sv, c, url, method, rs);
        }
        return MHD_YES;
    }
    if (rs->answered) {
        *data_size = 0;
        return MHD_YES;
    }
    if (*data_size) {
        if (!rs->too_large && rs->len + *data_size > MAX_BODY_BYTES) {
            rs->too_large = 1;
            free(rs->body);
            rs->body = NULL;
        }
        if (!rs->too_large) {
            if (rs->len + *data_size + 1 > rs->cap) {
                size_t cap = 2 * (rs->len + *data_size + 1);
                char *b = realloc(rs->body, cap);
                if (!b)
                    return MHD_NO;
                rs->body = b, rs->cap = cap;
            }
            memcpy(rs->body + rs->len, data, *data_size);
            rs->len += *data_size;
        }
        *data_size = 0;
        return MHD_YES;
    }
    return route(sv, c, url, method, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls, (void)c, (void)t;
    request_state *rs = *con_cls;
    if (rs) {
        free(rs->body);
        free(rs);
        *con_cls = NULL;
    }
}

// --- the command ------------------------------------------------------------------------------

typedef struct {
    const char *model, *host, *port, *backend, *device, *tokenizer, *name, *seqs, *tokens, *kvmb, *kv_dtype;
} serve_args;

/* Resolves host:port to *ss (*len bytes); 0 after printing why. */
static int resolve(const char *host, long long port, struct sockaddr_storage *ss, socklen_t *len, int *v6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%lld", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) {
        cli_error("serve", "--host '%s': %s", host, gai_strerror(rc));
        return 0;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return 1;
}

static int parse_args(const serve_args *a, long long *port, long long *dev, long long *seqs, long long *tokens,
                      double *kvmb, ss_kv_dtype *kvd, cli_backend *be) {
    if (!a->model)
        return cli_error("serve", "give --model DIR (see --help)"), 2;
    if (a->port && !cli_parse_i64(a->port, 0, 65535, port))
        return cli_error("serve", "--port '%s': expected an integer in 0..65535 (0: a free port)", a->port), 2;
    if (a->device && !cli_parse_i64(a->device, 0, 1024, dev))
        return cli_error("serve", "--device '%s': expected a CUDA device ordinal >= 0", a->device), 2;
    if (a->seqs && !cli_parse_i64(a->seqs, 1, 4096, seqs))
        return cli_error("serve", "--max-num-seqs '%s': expected an integer in 1..4096", a->seqs), 2;
    if (!a->tokens)
        *tokens = *seqs > 512 ? *seqs : 512;
    else if (!cli_parse_i64(a->tokens, *seqs, 1 << 20, tokens))
        return cli_error("serve", "--max-num-batched-tokens '%s': expected an integer in %lld..%d (>= --max-num-seqs)",
                         a->tokens, *seqs, 1 << 20), 2;
    if (a->kvmb) {
        char *end;
        *kvmb = strtod(a->kvmb, &end);
        if (!*a->kvmb || *end || !(*kvmb > 0 && *kvmb <= (1 << 24)))
            return cli_error("serve", "--kv-memory-mb '%s': expected a number of MB in (0, %d]", a->kvmb, 1 << 24), 2;
    }
    if (a->kv_dtype && ss_kv_dtype_parse(a->kv_dtype, kvd) != SS_OK)
        return cli_error("serve", "--kv-dtype '%.64s': expected bf16 or fp8", a->kv_dtype), 2;
    if (a->name && (!*a->name || strchr(a->name, '/') || strlen(a->name) > 200))
        return cli_error("serve", "--served-model-name '%s': expected 1..200 characters, no '/'", a->name), 2;
    return cli_backend_parse("serve", a->backend, be) ? 0 : 2;
}

/* DIR's base name (trailing slashes dropped). */
static void base_name(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t from = len;
    while (from > 0 && dir[from - 1] != '/')
        from--;
    snprintf(out, n, "%.*s", (int)(len - from), dir + from);
}

static int run_server(server *sv, const serve_args *a, long long port) {
    struct sockaddr_storage addr;
    socklen_t alen;
    int v6;
    if (!resolve(a->host, port, &addr, &alen, &v6))
        return 2;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
                     (v6 ? MHD_USE_IPv6 : 0);
    sv->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
                                  MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 300u,
                                  MHD_OPTION_END);
    if (!sv->daemon)
        return cli_error("serve", "cannot listen on %s port %lld (in use, or not an address of this machine?)",
                         a->host, port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = di ? di->port : (int)port;
    printf("listening on http://%s%s%s:%d (model '%s')\n", v6 ? "[" : "", a->host, v6 ? "]" : "", bound, sv->model);
    fflush(stdout);
    while (!g_stop) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Stop taking connections, end the jobs in flight (their threads wake),
     * let the streams write their last events (the 503 error event, [DONE]):
     * stopping the daemon closes the sockets, whatever is still unsent (2 s
     * for a client that stops reading), then wait for the connection threads. */
    MHD_socket listen_fd = MHD_quiesce_daemon(sv->daemon);
    http_engine_stop(sv->engine);
    for (int i = 0; i < 200 && open_streams(sv) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(sv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd); /* ours after a quiesce, closed once the daemon is gone */
    http_engine_stats st;
    http_engine_get_stats(sv->engine, &st);
    fprintf(stderr, "slidesparse serve: stopped (%s); %lld requests served\n",
            g_stop == SIGINT ? "SIGINT" : "SIGTERM", (long long)st.served);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_args a = {.host = "127.0.0.1", .backend = "cpu"};
    const cli_option opts[] = {
        CLI_OPT("--model", &a.model), CLI_OPT("--host", &a.host), CLI_OPT("--port", &a.port),
        CLI_OPT("--backend", &a.backend), CLI_OPT("--device", &a.device), CLI_OPT("--tokenizer", &a.tokenizer),
        CLI_OPT("--served-model-name", &a.name), CLI_OPT("--max-num-seqs", &a.seqs),
        CLI_OPT("--max-num-batched-tokens", &a.tokens), CLI_OPT("--kv-memory-mb", &a.kvmb),
        CLI_OPT("--kv-dtype", &a.kv_dtype), CLI_END,
    };
    int parsed = cli_parse("serve", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    long long port = DEFAULT_PORT, dev = 0, seqs = 16, tokens = 0;
    double kvmb = 0;
    ss_kv_dtype kvd = SS_KV_DTYPE_BF16;
    cli_backend be;
    int rc = parse_args(&a, &port, &dev, &seqs, &tokens, &kvmb, &kvd, &be);
    if (rc)
        return rc;
    char cfg_path[4096], name[256], why[1024];
    ss_model_config cfg;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", a.model);
    ss_status s = ss_model_config_load(cfg_path, &cfg);
    if (s != SS_OK)
        return cli_lib_error("serve", s);
    if (!a.tokenizer) {
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer.json", a.model);
        if (access(cfg_path, F_OK) != 0)
            return cli_error("serve", "%s has no tokenizer.json (give one with --tokenizer FILE)", a.model), 2;
    }
    ss_backend backend = cli_backend_for_model(&be, cfg.kind == SS_WEIGHTS_SLID);
    if ((s = cli_check_backend(a.model, &cfg, backend, dev)) != SS_OK)
        return cli_lib_error("serve", s);
    base_name(a.model, name, sizeof name);
    server sv = {.model = a.name ? a.name : name, .created = (int64_t)time(NULL)};
    pthread_mutex_init(&sv.mu, NULL);
    http_engine_config ec = {.model_dir = a.model, .tokenizer = a.tokenizer, .backend = backend,
                             .device = cli_device_for(backend, dev), .max_num_seqs = (int)seqs,
                             .max_num_batched_tokens = tokens, .kv_memory_mb = kvmb,
                             .kv_dtype = kvd};
    http_api_init();
    if ((s = http_engine_create(&ec, &sv.engine, why, sizeof why)) != SS_OK) {
        rc = cli_error("serve", "%s", why);
        goto done;
    }
    /* Our handlers instead of the CLI's: stopping is graceful here. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = run_server(&sv, &a, port);
done:
    http_engine_destroy(sv.engine);
    pthread_mutex_destroy(&sv.mu);
    return rc;
}

#endif
