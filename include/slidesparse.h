/* slidesparse.h — the public C API of libslidesparse.
 *
 * Layers (each uses only those above it in this list):
 *   core    status + error text, dtypes, tensor views
 *   sparse  Z:L patterns, pruning, sliding, lifting, 2:4 checks
 *   quant   weight / activation quantization (CPU reference)
 *   io      safetensors, checkpoint directories, config.json, atomic output
 *   linear  ss_linear: quant(+lift) -> GEMM -> dequant, CPU / cuBLASLt / cuSPARSELt
 *   tokenizer  byte-level BPE from tokenizer.json, text <-> ids, chat prompts, stop strings
 */
#ifndef SLIDESPARSE_H
#define SLIDESPARSE_H

#include "slidesparse/core.h"
#include "slidesparse/sparse.h"
#include "slidesparse/compress24.h"
#include "slidesparse/quant.h"
#include "slidesparse/io.h"
#include "slidesparse/linear.h"
#include "slidesparse/engine.h"
#include "slidesparse/tokenizer.h"
#include "slidesparse/prep.h"
#include "slidesparse/serve.h"
#include "slidesparse/tune.h"
#include "slidesparse/bench.h"
#include "slidesparse/pipeline.h"

#endif
