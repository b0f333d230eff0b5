/* Internal: pieces shared by the run-all files (config, status, run, report). */
#ifndef SS_PIPELINE_INTERNAL_H
#define SS_PIPELINE_INTERNAL_H

#include <jansson.h>

#include "slidesparse/pipeline.h"

/* The config-file schema object of c (new reference). */
json_t *ss_pipe_config_json(const ss_pipe_config *c);

/* "YYYY-mm-ddTHH:MM:SS" (local time) of now. */
void ss_pipe_iso_now(char *buf, size_t n);

/* <GPU> with every character outside [A-Za-z0-9.-] replaced by '_'. */
void ss_pipe_sanitize(const char *in, char *out, size_t n);

/* The CSV file stem of a preset ("bitnet-2b" -> "BitNet-2B"; others as is). */
const char *ss_pipe_model_stem(const char *preset);

/* A parsed CSV file: header names and rows of fields (quotes removed). */
typedef struct {
    int n_cols;
    char **cols;       // (n_cols)
    int n_rows;
    char ***rows;      // (n_rows, n_cols); missing fields are ""
} ss_pipe_csv;

ss_status ss_pipe_csv_read(const char *path, ss_pipe_csv *out);
void ss_pipe_csv_free(ss_pipe_csv *c);
/* Column index of name, -1 when absent. */
int ss_pipe_csv_col(const ss_pipe_csv *c, const char *name);

#endif
