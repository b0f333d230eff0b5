#!/usr/bin/env python3
"""make_reference.py — tiny HF checkpoints + reference outputs for the engine test.

Builds tiny BitNet b1.58, Llama and Qwen2 models with random weights through the
`transformers` package (the independent implementation our C engine is checked
against), saves each as a Hugging Face checkpoint (config.json + model.safetensors,
BF16) under OUT/<arch>/, and writes OUT/<arch>/reference.bin with, for fixed
prompts, the residual stream after every decoder layer, the last-position logits
and a greedy continuation.

    pip install torch transformers safetensors numpy
    python3 tools/make_reference.py tests/data/engine

Reference numerics: the BF16 weights are upcast and the model runs in float32
(eager attention). Our engine rounds activations to BF16 between ops, so the C
test compares with tolerances (tests/test_engine_cpu.c says which and why).
BitNet: transformers' BitNetForCausalLM with a plain BF16 checkpoint (no
`quantization_config`) uses ordinary nn.Linear layers: it does NOT quantize
weights or activations inside forward (that happens only through the "bitnet"
quantizer integration for packed checkpoints). So the BF16 reference is the
plain float model, which is what our BF16 path computes.

reference.bin format (all little-endian), mirrored in tests/test_engine_cpu.c:
    u32 magic   = 0x46455253 ("SREF")
    u32 version = 1
    u32 count   = number of records
    count records, each:
        u32 name_len, name bytes (ASCII, no NUL)
        u32 dtype   (0 = float32, 1 = int32)
        u32 ndim, i64 shape[ndim]
        prod(shape) elements of dtype
Records per prompt p (0-based):
    p<p>.ids         int32 [T]        the prompt
    p<p>.layer<l>    float32 [T, H]   residual stream after decoder layer l
    p<p>.logits      float32 [V]      logits at the last prompt position
    p<p>.greedy      int32 [G]        greedy continuation (G new tokens)
    p<p>.gap         float32 [G]      top1 - top2 logit at each greedy step
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors.torch import save_file

MAGIC = 0x46455253
VERSION = 1
N_GREEDY = 4
# The seed of each model is the first from SEED0 whose greedy steps all have a
# top-2 logit gap >= MIN_GAP (so BF16 rounding in the engine cannot flip them)
# and whose continuations are not one repeated token.
MIN_GAP = 1.0
SEED0 = {"bitnet": 100, "llama": 200, "qwen2": 300}

# Shapes chosen so K (hidden, intermediate) is not a multiple of every L in
# 4..16 (so the slid path pads), GQA everywhere, tied and untied embeddings.
ARCHS = {
    "bitnet": dict(
        architectures=["BitNetForCausalLM"], model_type="bitnet", hidden_size=96,
        intermediate_size=200, num_hidden_layers=2, num_attention_heads=6,
        num_key_value_heads=2, head_dim=16, vocab_size=320, hidden_act="relu2",
        rope_theta=500000.0, tie_word_embeddings=True, attention_bias=False,
        rms_norm_eps=1e-5, max_position_embeddings=128),
    "llama": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64,
        intermediate_size=136, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=256, hidden_act="silu",
        rope_theta=10000.0, tie_word_embeddings=True, attention_bias=False,
        rms_norm_eps=1e-5, max_position_embeddings=128),
    "qwen2": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=80,
        intermediate_size=152, num_hidden_layers=2, num_attention_heads=5,
        num_key_value_heads=1, head_dim=16, vocab_size=384, hidden_act="silu",
        rope_theta=1000000.0, tie_word_embeddings=False, attention_bias=True,
        rms_norm_eps=1e-6, max_position_embeddings=128),
}

PROMPTS = [[1, 17, 42, 99, 5, 200, 33], [7, 250, 3, 64]]


def hf_model(arch, cfg, seed):
    from transformers import AutoConfig, AutoModelForCausalLM
    kw = dict(cfg)
    kw.pop("architectures")
    mt = kw.pop("model_type")
    kw["bos_token_id"], kw["eos_token_id"] = 0, 1
    if mt == "qwen2":
        kw.pop("attention_bias")  # Qwen2 always has q/k/v biases
        kw.pop("head_dim")
    if mt == "llama":
        kw["mlp_bias"] = False
    config = AutoConfig.for_model(mt, **kw)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    # Random weights large enough that logits have clear gaps (HF init's
    # std 0.02 gives near-uniform logits and ties in greedy decoding).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.empty_like(p).uniform_(0.5, 1.5))
            elif name.endswith(".bias"):
                p.copy_(torch.randn_like(p) * 0.5)
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(torch.randn_like(p))
            elif "o_proj" in name or "down_proj" in name:
                # Layers outweigh the embedding in the residual stream, so a
                # tied lm_head does not just echo the last input token.
                p.copy_(torch.randn_like(p) * 3 / (p.shape[1] ** 0.5))
            else:
                p.copy_(torch.randn_like(p) / (p.shape[1] ** 0.5))
            # The checkpoint is BF16: the reference runs the rounded weights.
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    model.eval()
    return model


def write_config(path, cfg):
    c = dict(cfg)
    c.update(torch_dtype="bfloat16", bos_token_id=0, eos_token_id=1,
             initializer_range=0.02, attention_dropout=0.0, use_cache=True)
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")


def record(name, arr):
    arr = np.ascontiguousarray(arr)
    dt = {np.dtype(np.float32): 0, np.dtype(np.int32): 1}[arr.dtype]
    nb = name.encode()
    head = struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, arr.ndim)
    head += b"".join(struct.pack("<q", d) for d in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder("<")).tobytes()


@torch.no_grad()
def references(model, cfg):
    recs, ok = [], True
    layers = model.model.layers
    for p, ids in enumerate(PROMPTS):
        outs = {}
        hooks = [l.register_forward_hook(
            lambda m, a, o, i=i: outs.__setitem__(i, o[0] if isinstance(o, tuple) else o))
            for i, l in enumerate(layers)]
        x = torch.tensor([ids])
        logits = model(x).logits[0, -1]
        for h in hooks:
            h.remove()
        recs.append(record(f"p{p}.ids", np.array(ids, dtype=np.int32)))
        for i in range(len(layers)):
            recs.append(record(f"p{p}.layer{i}", outs[i][0].float().numpy()))
        recs.append(record(f"p{p}.logits", logits.float().numpy()))
        # Greedy continuation, recomputing the whole sequence each step (no
        # cache), so the reference does not depend on HF's cache code.
        seq, gen, gaps = list(ids), [], []
        for _ in range(N_GREEDY):
            lg = model(torch.tensor([seq])).logits[0, -1].float()
            top = torch.topk(lg, 2)
            gen.append(int(top.indices[0]))
            gaps.append(float(top.values[0] - top.values[1]))
            seq.append(gen[-1])
        recs.append(record(f"p{p}.greedy", np.array(gen, dtype=np.int32)))
        recs.append(record(f"p{p}.gap", np.array(gaps, dtype=np.float32)))
        ok = ok and min(gaps) >= MIN_GAP and len(set(gen + ids[-1:])) > 2
    return recs, ok


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_reference.py OUT_DIR")
    out = sys.argv[1]
    for arch, cfg in ARCHS.items():
        d = os.path.join(out, arch)
        os.makedirs(d, exist_ok=True)
        for seed in range(SEED0[arch], SEED0[arch] + 200):
            model = hf_model(arch, cfg, seed)
            recs, ok = references(model, cfg)
            if ok:
                break
        else:
            sys.exit(f"{arch}: no seed gave clear greedy margins")
        sd = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
        if cfg["tie_word_embeddings"]:
            sd.pop("lm_head.weight", None)
        sd = {k: v for k, v in sd.items() if "rotary_emb" not in k}
        save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        write_config(os.path.join(d, "config.json"), cfg)
        with open(os.path.join(d, "reference.bin"), "wb") as f:
            f.write(struct.pack("<III", MAGIC, VERSION, len(recs)))
            for r in recs:
                f.write(r)
        print(f"{d}: seed {seed}, {len(sd)} tensors, {len(recs)} reference records")


if __name__ == "__main__":
    main()
