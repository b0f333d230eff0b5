/* Internal: compressed-tensors (llm-compressor) W8A8 checkpoints read as ours. */
#ifndef SS_IO_COMPRESSED_TENSORS_H
#define SS_IO_COMPRESSED_TENSORS_H

#include <jansson.h>

#include "slidesparse/io.h"

/* quantization_config with quant_method "compressed-tensors" -> c (kind
 * QUANTIZED, weight_dtype, per_channel, quant_source, quant_format). Refuses
 * every scheme the W8A8 GEMM cannot run exactly, one line naming the field. */
ss_status ss_ct_parse_config(const char *label, json_t *q, ss_model_config *c);

/* Replaces, in entries (n), every "*.weight_scale" by an owned F32 copy of
 * shape [numel] (its data allocated); refuses tensors of unsupported schemes.
 * *owned (n_owned) gets the replacement entries, freed by ss_ct_free. */
ss_status ss_ct_map_entries(const char *dir, const ss_st_entry **entries, size_t n,
                            ss_st_entry **owned, size_t *n_owned);
void ss_ct_free(ss_st_entry *owned, size_t n_owned);

#endif
