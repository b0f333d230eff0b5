/* The engine side of `slidesparse serve`: one thread owns the model, the KV
 * pool and the continuous-batching scheduler and steps the batch; request
 * threads submit jobs and wait for their text through a mutex and condition
 * variable per job.
 *
 *   request thread                     engine thread
 *   http_engine_submit: tokenize,  ->  inbox -> ss_scheduler_add
 *     check the context, queue         schedule -> forward -> sample (greedy,
 *   http_job_next: wait for text   <-    or the job's seeded sampler) -> commit
 *   http_job_release (cancel when      -> detokenize -> stop ids / strings
 *     the client left)                 ended, cancelled: ss_scheduler_cancel
 *                                        (the job's KV blocks go back at once)
 *
 * A job's detokenizer, stopper and sampler are touched by the engine thread
 * only; its text, state and counters under its mutex. */
#ifndef SS_HTTP_ENGINE_H
#define SS_HTTP_ENGINE_H

#include "http_api.h"

typedef struct {
    const char *model_dir;
    const char *tokenizer;      /* NULL: model_dir/tokenizer.json */
    ss_backend backend;
    int device;                 /* -1: CPU */
    int max_num_seqs;           /* S */
    int64_t max_num_batched_tokens; /* T >= S */
    double kv_memory_mb;        /* 0: S sequences of the whole context */
    ss_kv_dtype kv_dtype;       /* the KV cache's element type */
} http_engine_config;

typedef struct http_engine http_engine; /* opaque */
typedef struct http_job http_job;       /* opaque: one request in flight */

/* Loads the model and tokenizer, makes the KV pool and starts the engine
 * thread. On failure why (why_n bytes) says what failed, in one line. */
ss_status http_engine_create(const http_engine_config *c, http_engine **out, char *why, size_t why_n);
/* Stops the engine thread: every job still queued or running ends failed
 * (503, "the server is shutting down"), so no request thread stays blocked.
 * Jobs may be released after this; the engine is freed by http_engine_destroy. */
void http_engine_stop(http_engine *e);
void http_engine_destroy(http_engine *e);

const ss_model_config *http_engine_config_of(const http_engine *e);

typedef struct {
    int running, waiting;
    int peak_running;  /* the most sequences one step has run */
    int32_t kv_free_blocks, kv_total_blocks;
    int64_t served;    /* jobs ended (any reason) */
    int64_t cancelled; /* of them, ended because the client left */
} http_engine_stats;
void http_engine_get_stats(http_engine *e, http_engine_stats *st);

/* Tokenizes r (chat: in the tokenizer's role markers), checks prompt +
 * max_tokens against the context and queues the job. 0, or -1 with *err
 * (400: no chat markers, an empty prompt, beyond the context; 503 after
 * http_engine_stop). */
int http_engine_submit(http_engine *e, const http_api_request *r, http_job **out, http_api_error *err);

typedef struct {
    char *text;                /* malloc'd text produced since *sent (may be "") */
    int done;
    const char *finish_reason; /* "stop" / "length" once done, NULL on failure */
    http_api_usage usage;
    http_api_error error;      /* error.status != 0: the job failed */
} http_job_update;

/* Blocks until the job has text past *sent bytes or has ended; advances
 * *sent. u->text is NULL only when out of memory. */
void http_job_next(http_job *j, size_t *sent, http_job_update *u);
/* The request side is done with j; an unfinished job is cancelled (its KV
 * blocks freed before the next step). */
void http_job_release(http_job *j);

#endif
