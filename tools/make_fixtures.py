#!/usr/bin/env python3
"""Create tiny random-weight Jamba checkpoints and their Hugging Face reference outputs.

Writes one folder per fixture into tests/testdata/fixtures/<name>/ (or --out DIR):

  config.json, generation_config.json      HF save_pretrained output
  model.safetensors | model-0000i-of-0000N.safetensors + model.safetensors.index.json
  reference.json                           prompt ids, greedy ids, metadata
  prompt_logits.f32                        little-endian float32 [L, V]
  decode_logits.f32                        little-endian float32 [16, V]

Definitions (see tests/testdata/fixtures/README.md):
  prompt_logits[t]  = logits at prompt position t, from ONE forward over the whole prompt.
  greedy_ids[0]     = argmax(prompt_logits[L-1]).
  for s in 0..15:   feed greedy_ids[s] as a single token with the cache;
                    decode_logits[s] = its logits; greedy_ids[s+1] = argmax(decode_logits[s]).

Everything runs on CPU in float32 with use_mamba_kernels=False (HF slow_forward) and
attn_implementation="eager". Reference logits are computed from the checkpoint as reloaded
from disk (for the bf16 fixture: the bf16 weights upcast to float32).

Usage:  python tools/make_fixtures.py [--out DIR] [--only NAME ...]
"""

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import JambaConfig, JambaForCausalLM
from transformers.models.jamba.modeling_jamba import HybridMambaAttentionDynamicCache

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "testdata", "fixtures")

NUM_DECODE_STEPS = 16
MARGIN_REL = 1e-3          # top-1 minus top-2 logit must exceed MARGIN_REL * max|logit|
ROUTER_MARGIN_REL = 1e-3   # k-th minus (k+1)-th router logit must exceed this * max|router logit|
MAX_ATTEMPTS = 50
RESERVED_IDS = (0, 1, 2)   # pad / bos / eos: never allowed as a greedy token (engines may stop at eos)

COMMON = dict(
    rms_norm_eps=1e-6,
    hidden_act="silu",
    use_mamba_kernels=False,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    initializer_range=0.15,  # informational; weights are set by init_weights() below
    attn_implementation="eager",
)

FIXTURES = [
    dict(
        name="gqa_h72",
        description=(
            "fp32, single file. hidden 72 (not a power of two), 6 heads (hd 12) / 2 KV heads (GQA), 8 layers: "
            "attention at 2 and 6 (period 4 offset 2), MoE on odd layers (4 experts top-2, all on Mamba layers), "
            "d_state 8, d_conv 4, expand 2, dt_rank auto (=5), intermediate 96."
        ),
        seed=1001,
        prompt_len=12,
        config=dict(
            vocab_size=200, hidden_size=72, num_attention_heads=6, num_key_value_heads=2, num_hidden_layers=8,
            attn_layer_period=4, attn_layer_offset=2, expert_layer_period=2, expert_layer_offset=1,
            num_experts=4, num_experts_per_tok=2, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2,
            mamba_dt_rank="auto", intermediate_size=96,
        ),
    ),
    dict(
        name="mqa_top1",
        description=(
            "fp32, tied embeddings (no lm_head.weight on disk). hidden 48, 4 heads (hd 12) / 1 KV head (MQA), "
            "6 layers: attention at 0 and 3 (period 3 offset 0, so layer 0 is attention), MoE at 2 and 5 "
            "(3 experts top-1), d_state 16, d_conv 3, dt_rank 5 (explicit), expand 2, intermediate 64."
        ),
        seed=2002,
        prompt_len=9,
        emb_std=0.5,
        config=dict(
            vocab_size=128, hidden_size=48, num_attention_heads=4, num_key_value_heads=1, num_hidden_layers=6,
            attn_layer_period=3, attn_layer_offset=0, expert_layer_period=3, expert_layer_offset=2,
            num_experts=3, num_experts_per_tok=1, mamba_d_state=16, mamba_d_conv=3, mamba_expand=2,
            mamba_dt_rank=5, intermediate_size=64, tie_word_embeddings=True,
        ),
    ),
    dict(
        name="bf16",
        description=(
            "Same architecture as gqa_h72, different seed, weights stored as bfloat16 (config torch_dtype "
            "bfloat16). Reference logits are computed in float32 from the bf16 weights upcast to float32."
        ),
        seed=3003,
        prompt_len=13,
        save_dtype="bfloat16",
        config=dict(
            vocab_size=200, hidden_size=72, num_attention_heads=6, num_key_value_heads=2, num_hidden_layers=8,
            attn_layer_period=4, attn_layer_offset=2, expert_layer_period=2, expert_layer_offset=1,
            num_experts=4, num_experts_per_tok=2, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2,
            mamba_dt_rank="auto", intermediate_size=96,
        ),
    ),
    dict(
        name="sharded",
        description=(
            "fp32, saved in >= 3 safetensors shards plus model.safetensors.index.json. hidden 64, 4 heads (hd 16) "
            "/ 2 KV heads, 8 layers with the Jamba-v0.1 schedule: attention only at layer 4 (period 8 offset 4), "
            "MoE on odd layers (8 experts top-2), d_state 16, d_conv 4, expand 1, dt_rank auto (=4), "
            "intermediate 24."
        ),
        seed=4004,
        prompt_len=14,
        min_shards=3,
        config=dict(
            vocab_size=160, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=8,
            attn_layer_period=8, attn_layer_offset=4, expert_layer_period=2, expert_layer_offset=1,
            num_experts=8, num_experts_per_tok=2, mamba_d_state=16, mamba_d_conv=4, mamba_expand=1,
            mamba_dt_rank="auto", intermediate_size=24,
        ),
    ),
    dict(
        name="proj_bias_dense",
        description=(
            "fp32. mamba_proj_bias true (in_proj.bias, out_proj.bias present), mamba_conv_bias false (no "
            "conv1d.bias), num_experts 1 so every FFN is a dense MLP even though expert_layer_period/offset are "
            "2/1. d_conv 2, expand 1, hidden 40, 5 heads (hd 8) / 5 KV heads (plain MHA), 4 layers: attention at "
            "1 and 3 (period 2 offset 1), d_state 8, dt_rank auto (=3), intermediate 56. rms_norm_eps 1e-2 (not "
            "the default 1e-6) so an engine that ignores the config eps or puts eps outside the sqrt fails."
        ),
        seed=5005,
        prompt_len=10,
        config=dict(
            vocab_size=144, hidden_size=40, num_attention_heads=5, num_key_value_heads=5, num_hidden_layers=4,
            attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
            num_experts=1, num_experts_per_tok=1, mamba_d_state=8, mamba_d_conv=2, mamba_expand=1,
            mamba_dt_rank="auto", intermediate_size=56, mamba_proj_bias=True, mamba_conv_bias=False,
            rms_norm_eps=1e-2,
        ),
    ),
    dict(
        name="legacy_names",
        description=(
            "gqa_h72's exact weights with the first Jamba-v0.1 (trust_remote_code) tensor names: "
            "moe.router / moe.experts.{e}.* (dense MLPs as moe.experts.0.*), pre_moe_layernorm, "
            "mamba.B_layernorm / mamba.C_layernorm; config uses n_ctx instead of max_position_embeddings, adds "
            "mamba_inner_layernorms true, calc_logits_for_entire_prompt false and an auto_map, has no "
            "num_logits_to_keep, and keeps mamba_dt_rank as the string \"auto\". Reference outputs are identical "
            "to gqa_h72."
        ),
        legacy_of="gqa_h72",
    ),
    dict(
        name="d_state4_long",
        description=(
            "fp32, long prompt (40 tokens) to exercise the scan over many steps. hidden 32, 2 heads (hd 16) / "
            "1 KV head, 5 layers: attention only at 4 (period 5 offset 4), MoE on even layers (period 2 offset 0: "
            "layers 0, 2 and 4, so the attention layer 4 has an MoE FFN), 6 experts top-3, d_state 4, d_conv 4, "
            "expand 3 (d_inner 96), dt_rank auto (=2), intermediate 48."
        ),
        seed=7007,
        prompt_len=40,
        config=dict(
            vocab_size=128, hidden_size=32, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=5,
            attn_layer_period=5, attn_layer_offset=4, expert_layer_period=2, expert_layer_offset=0,
            num_experts=6, num_experts_per_tok=3, mamba_d_state=4, mamba_d_conv=4, mamba_expand=3,
            mamba_dt_rank="auto", intermediate_size=48,
        ),
    ),
    dict(
        name="odd_shapes",
        description=(
            "fp32. Every width off the vector length: hidden 42, 6 heads (hd 7) / 3 KV heads, d_inner 84, "
            "intermediate 50 (dense MLPs on even layers, MoE with 5 experts top-2 on odd ones), d_state 5, "
            "d_conv 4, dt_rank auto (=3), vocab 131, 4 layers with attention at 1 (period 4 offset 1), "
            "prompt 11."
        ),
        seed=8008,
        prompt_len=11,
        config=dict(
            vocab_size=131, hidden_size=42, num_attention_heads=6, num_key_value_heads=3, num_hidden_layers=4,
            attn_layer_period=4, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
            num_experts=5, num_experts_per_tok=2, mamba_d_state=5, mamba_d_conv=4, mamba_expand=2,
            mamba_dt_rank="auto", intermediate_size=50,
        ),
    ),
]

# Edge schedules and widths: hidden 32, 4 heads / 2 KV heads, 4 layers, intermediate 40, vocab 97,
# prompt 9, unless a spec says otherwise.
EDGE_BASE = dict(
    vocab_size=97, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=4,
    attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
    num_experts=4, num_experts_per_tok=2, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2,
    mamba_dt_rank="auto", intermediate_size=40,
)


def edge_fixture(name, seed, description, **config):
    return dict(name=name, description=description, seed=seed, prompt_len=9,
                config={**EDGE_BASE, **config})


FIXTURES += [
    edge_fixture("no_mamba", 11, "Every layer attention (period 1 offset 0): no Mamba state at all.",
                 attn_layer_period=1, attn_layer_offset=0),
    edge_fixture("no_attention", 12, "No attention layer (period 8 offset 7 in 4 layers): no KV cache.",
                 attn_layer_period=8, attn_layer_offset=7),
    edge_fixture("wide_state", 14, "d_state 80 and d_conv 9, past the CPU vector paths' 64 and 8.",
                 mamba_d_state=80, mamba_d_conv=9),
    edge_fixture("one_layer", 15, "One layer, attention with an MoE FFN (expert period 1 offset 0).",
                 num_hidden_layers=1, attn_layer_period=1, attn_layer_offset=0, expert_layer_period=1,
                 expert_layer_offset=0),
    edge_fixture("head_dim1", 16, "hidden 8 with 8 heads (head dim 1) / 4 KV heads, intermediate 12.",
                 hidden_size=8, num_attention_heads=8, num_key_value_heads=4, intermediate_size=12),
]


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------

def init_weights(model, cfg, gen, emb_std=1.0, lm_head_gain=3.0):
    """Deterministic init that gives a healthy logit spread and exercises every parameter.

    HF's default init (normal(0, 0.02), zero biases, ones for norms, A_log = log(1..N), D = 1)
    gives nearly flat logits and leaves several code paths untested (norm gains, D, biases), so
    every parameter is overwritten here from a seeded torch.Generator, in named_parameters() order.
    """
    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float32)

    with torch.no_grad():
        for name, p in model.named_parameters():  # tied parameters appear once
            shape = tuple(p.shape)
            if name.endswith("embed_tokens.weight"):
                v = normal(shape, emb_std)
            elif name.endswith("lm_head.weight"):
                v = normal(shape, lm_head_gain / math.sqrt(shape[1]))
            elif "layernorm.weight" in name:  # all RMSNorm gains, incl. dt/b/c and final
                v = uniform(shape, 0.6, 1.4)
            elif name.endswith("mamba.A_log"):
                # A = -exp(A_log) in about [-0.5*N, -0.3]; rows differ
                v = torch.log(uniform(shape, 0.3, 0.5 * cfg.mamba_d_state + 0.5))
            elif name.endswith("mamba.D"):
                v = uniform(shape, 0.5, 1.5)
            elif name.endswith("dt_proj.bias"):
                # inverse softplus of dt ~ log-uniform(0.01, 0.3) (as in Mamba's dt init)
                dt = torch.exp(uniform(shape, math.log(0.01), math.log(0.3)))
                v = dt + torch.log(-torch.expm1(-dt))
            elif name.endswith("conv1d.weight"):
                v = normal(shape, 1.0 / math.sqrt(shape[-1]))
            elif name.endswith(".bias"):  # conv1d.bias, in_proj.bias, out_proj.bias
                v = normal(shape, 0.1)
            elif name.endswith(".weight") and p.dim() == 2:  # every other Linear [out, in]
                v = normal(shape, 1.0 / math.sqrt(shape[1]))
            else:
                raise RuntimeError(f"unhandled parameter {name} {shape}")
            p.copy_(v)


# --------------------------------------------------------------------------------------------
# Reference computation
# --------------------------------------------------------------------------------------------

class RouterRecorder:
    """Records the k-th vs (k+1)-th router-logit gap of every MoE call (near-ties flip expert choice)."""

    def __init__(self, model, top_k):
        self.top_k = top_k
        self.enabled = True
        self.min_rel = float("inf")
        self.handles = []
        for name, mod in model.named_modules():
            if name.endswith("feed_forward.router"):
                self.handles.append(mod.register_forward_hook(self._hook))

    def _hook(self, module, inputs, output):
        if not self.enabled:
            return
        r = output.detach().float().reshape(-1, output.shape[-1])
        if r.shape[-1] <= self.top_k:
            return
        s = torch.sort(r, dim=-1, descending=True).values
        gap = s[:, self.top_k - 1] - s[:, self.top_k]
        scale = r.abs().amax(dim=-1).clamp_min(1e-30)
        self.min_rel = min(self.min_rel, float((gap / scale).min()))

    def remove(self):
        for h in self.handles:
            h.remove()


def top2_margin_rel(logits):
    s = torch.sort(logits.float(), descending=True).values
    return float((s[0] - s[1]) / logits.abs().max().clamp_min(1e-30))


@torch.no_grad()
def compute_reference(model, prompt_ids):
    """One forward over the prompt, then NUM_DECODE_STEPS single-token steps with the HF cache."""
    cfg = model.config
    L = len(prompt_ids)
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    cache = HybridMambaAttentionDynamicCache(cfg, 1, dtype=torch.float32, device="cpu")
    out = model(input_ids=ids, past_key_values=cache, use_cache=True,
                cache_position=torch.arange(L), num_logits_to_keep=None, return_dict=True)
    prompt_logits = out.logits[0].float().clone()  # [L, V]
    assert prompt_logits.shape == (L, cfg.vocab_size)
    greedy = [int(torch.argmax(prompt_logits[-1]))]
    margins = [top2_margin_rel(prompt_logits[-1])]
    decode_logits = []
    for s in range(NUM_DECODE_STEPS):
        out = model(input_ids=torch.tensor([[greedy[-1]]]), past_key_values=out.past_key_values,
                    use_cache=True, cache_position=torch.tensor([L + s]), num_logits_to_keep=None,
                    return_dict=True)
        lg = out.logits[0, -1].float().clone()
        decode_logits.append(lg)
        greedy.append(int(torch.argmax(lg)))
        margins.append(top2_margin_rel(lg))
    return prompt_logits, torch.stack(decode_logits), greedy, margins


@torch.no_grad()
def cross_check(model, prompt_ids, prompt_logits, decode_logits, greedy):
    """Self-consistency checks against model.generate and against a cache-free full forward."""
    L = len(prompt_ids)
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    scale = float(max(prompt_logits.abs().max(), decode_logits.abs().max()))
    ref = torch.cat([prompt_logits[-1:], decode_logits])  # the 17 logits that chose greedy_ids

    # 1) HF generate (greedy). eos disabled so min_new_tokens does not alter the argmax.
    gen_cfg = copy.deepcopy(model.generation_config)
    gen_cfg.eos_token_id = None
    g = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gen_cfg, do_sample=False,
                       min_new_tokens=NUM_DECODE_STEPS + 1, max_new_tokens=NUM_DECODE_STEPS + 1,
                       output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    gen_ids = g.sequences[0, L:].tolist()
    gen_logits = torch.stack([x[0].float() for x in g.logits])
    assert gen_ids == greedy, f"generate ids {gen_ids} != loop ids {greedy}"
    d_gen = float((gen_logits - ref).abs().max())
    d_first = float((gen_logits[0] - prompt_logits[-1]).abs().max())
    assert d_first <= 1e-5 * scale, f"first generate logits differ from prompt_logits[L-1] by {d_first}"
    assert d_gen <= 1e-5 * scale, f"generate logits differ from the decode loop by {d_gen}"

    # 2) no-cache forward over prompt + greedy[:16]: same math, different path (conv over the whole
    #    sequence instead of conv_state, full attention instead of the KV cache).
    full = torch.tensor([prompt_ids + greedy[:NUM_DECODE_STEPS]], dtype=torch.long)
    fl = model(input_ids=full, use_cache=False, num_logits_to_keep=None, return_dict=True).logits[0].float()
    d_prompt = float((fl[:L] - prompt_logits).abs().max())
    d_full = float((fl[L - 1:] - ref).abs().max())
    assert d_full <= 1e-4 * scale, f"cache-free forward differs from cached decode by {d_full}"
    return dict(generate_vs_loop=d_gen / scale, nocache_prompt=d_prompt / scale, nocache_decode=d_full / scale)


def load_model(path):
    model = JambaForCausalLM.from_pretrained(path, torch_dtype=torch.float32, use_mamba_kernels=False,
                                             attn_implementation="eager")
    model.eval()
    # from_pretrained leaves parameters in memory-mapped safetensors buffers whose alignment depends on
    # the header length; MKL's single-row GEMM rounds differently for unaligned weights (~1 ulp), so
    # copy every parameter into fresh (64-byte aligned) memory to make the reference independent of it.
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.clone()
    assert all(p.dtype == torch.float32 and p.data_ptr() % 64 == 0 for p in model.parameters())
    return model


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def write_f32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def write_json(path, obj):
    """indent=2, but lists of numbers stay on one line (readable prompt_ids / greedy_ids)."""
    def enc(v, ind):
        if isinstance(v, dict):
            pad = " " * (ind + 2)
            items = [f"{pad}{json.dumps(k)}: {enc(x, ind + 2)}" for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}" if items else "{}"
        return json.dumps(v)
    with open(path, "w") as f:
        f.write(enc(obj, 0) + "\n")


def dir_size(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def make_fixture(spec, out_root):
    name = spec["name"]
    fdir = os.path.join(out_root, name)
    save_dtype = spec.get("save_dtype", "float32")
    cfg_kwargs = dict(COMMON, **spec["config"])
    last_err = None
    for attempt in range(MAX_ATTEMPTS):
        seed = spec["seed"] + 1000 * attempt
        if os.path.exists(fdir):
            shutil.rmtree(fdir)
        os.makedirs(fdir)

        torch.manual_seed(seed)
        config = JambaConfig(**cfg_kwargs)
        model = JambaForCausalLM(config).float().eval()
        gen = torch.Generator().manual_seed(seed)
        init_weights(model, config, gen, emb_std=spec.get("emb_std", 1.0))

        V = config.vocab_size
        prompt = [1] + torch.randint(3, V, (spec["prompt_len"] - 1,), generator=gen).tolist()

        if save_dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        save_kwargs = dict(safe_serialization=True)
        if spec.get("min_shards"):
            total = sum(p.numel() * p.element_size() for p in model.parameters())
            save_kwargs["max_shard_size"] = total // (spec["min_shards"] + 1)
        model.save_pretrained(fdir, **save_kwargs)
        del model

        # Reference from the checkpoint exactly as stored on disk.
        model = load_model(fdir)
        rec = RouterRecorder(model, config.num_experts_per_tok)
        prompt_logits, decode_logits, greedy, margins = compute_reference(model, prompt)
        rec.enabled = False
        problems = []
        if min(margins) <= MARGIN_REL:
            problems.append(f"greedy margin {min(margins):.2e}")
        if rec.min_rel <= ROUTER_MARGIN_REL:
            problems.append(f"router margin {rec.min_rel:.2e}")
        if any(t in RESERVED_IDS for t in greedy):
            problems.append("greedy token in {0,1,2}")
        if len(set(greedy)) < 4:
            problems.append(f"only {len(set(greedy))} distinct greedy tokens")
        if problems:
            last_err = ", ".join(problems)
            print(f"  [{name}] seed {seed} rejected: {last_err}", flush=True)
            rec.remove()
            continue
        checks = cross_check(model, prompt, prompt_logits, decode_logits, greedy)
        rec.remove()

        shards = sorted(f for f in os.listdir(fdir) if f.endswith(".safetensors"))
        if spec.get("min_shards"):
            assert len(shards) >= spec["min_shards"], shards
            assert os.path.exists(os.path.join(fdir, "model.safetensors.index.json"))

        write_f32(os.path.join(fdir, "prompt_logits.f32"), prompt_logits)
        write_f32(os.path.join(fdir, "decode_logits.f32"), decode_logits)
        ref = {
            "name": name,
            "description": spec["description"],
            "prompt_ids": prompt,
            "greedy_ids": greedy,
            "num_decode_steps": NUM_DECODE_STEPS,
            "vocab_size": V,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "dtype_on_disk": save_dtype,
            "seed": seed,
            "layer_types": config.layers_block_type,
            "layer_num_experts": config.layers_num_experts,
            "min_top2_margin_rel": round(min(margins), 6),
            "min_router_margin_rel": None if rec.min_rel == float("inf") else round(rec.min_rel, 6),
        }
        write_json(os.path.join(fdir, "reference.json"), ref)
        return dict(name=name, seed=seed, attempts=attempt + 1, prompt_len=len(prompt), greedy=greedy,
                    margin=min(margins), router=rec.min_rel, shards=len(shards), size=dir_size(fdir),
                    checks=checks, scale=float(prompt_logits.abs().max()))
    raise RuntimeError(f"{name}: no acceptable seed in {MAX_ATTEMPTS} attempts (last: {last_err})")


LEGACY_CONFIG_DROP = ("max_position_embeddings", "num_logits_to_keep")


def legacy_name(n):
    """HF name -> first Jamba-v0.1 (remote code) name (inverse of AI21's conversion script)."""
    n = n.replace(".mamba.b_layernorm.", ".mamba.B_layernorm.").replace(".mamba.c_layernorm.", ".mamba.C_layernorm.")
    n = n.replace(".pre_ff_layernorm.", ".pre_moe_layernorm.")
    if ".feed_forward.experts." in n or ".feed_forward.router." in n:
        n = n.replace(".feed_forward.", ".moe.")
    elif ".feed_forward." in n:
        n = n.replace(".feed_forward.", ".moe.experts.0.")
    return n


def hf_name_from_legacy(n, layers_num_experts):
    """Legacy name -> HF name, as AI21's conversion script maps them."""
    n = n.replace(".mamba.B_layernorm.", ".mamba.b_layernorm.").replace(".mamba.C_layernorm.", ".mamba.c_layernorm.")
    n = n.replace(".pre_moe_layernorm.", ".pre_ff_layernorm.")
    if ".moe." in n:
        layer = int(n.split(".")[2])  # model.layers.{i}.moe...
        if layers_num_experts[layer] == 1:
            n = n.replace(".moe.experts.0.", ".feed_forward.")
        else:
            n = n.replace(".moe.", ".feed_forward.")
    return n


def make_legacy(spec, out_root, results):
    name, src = spec["name"], spec["legacy_of"]
    sdir, fdir = os.path.join(out_root, src), os.path.join(out_root, name)
    if os.path.exists(fdir):
        shutil.rmtree(fdir)
    os.makedirs(fdir)

    with open(os.path.join(sdir, "config.json")) as f:
        cfg = json.load(f)
    cfg["n_ctx"] = cfg["max_position_embeddings"]
    for k in LEGACY_CONFIG_DROP:
        cfg.pop(k, None)
    cfg["mamba_inner_layernorms"] = True
    cfg["calc_logits_for_entire_prompt"] = False
    cfg["mamba_dt_rank"] = "auto"
    cfg["auto_map"] = {"AutoConfig": "configuration_jamba.JambaConfig",
                       "AutoModelForCausalLM": "modeling_jamba.JambaForCausalLM"}
    write_json(os.path.join(fdir, "config.json"), dict(sorted(cfg.items())))

    tensors = load_file(os.path.join(sdir, "model.safetensors"))
    renamed = {legacy_name(k): v.contiguous() for k, v in tensors.items()}
    assert len(renamed) == len(tensors)
    save_file(renamed, os.path.join(fdir, "model.safetensors"), metadata={"format": "pt"})

    for f in ("prompt_logits.f32", "decode_logits.f32"):
        shutil.copyfile(os.path.join(sdir, f), os.path.join(fdir, f))
    with open(os.path.join(sdir, "reference.json")) as f:
        ref = json.load(f)
    ref["name"], ref["description"] = name, spec["description"]
    write_json(os.path.join(fdir, "reference.json"), ref)

    # Verify: map the legacy names back, load into HF and reproduce the source fixture bit-exactly.
    legacy = load_file(os.path.join(fdir, "model.safetensors"))
    hf_cfg = dict(cfg)
    hf_cfg["max_position_embeddings"] = hf_cfg.pop("n_ctx")
    for k in ("mamba_inner_layernorms", "calc_logits_for_entire_prompt", "auto_map", "transformers_version",
              "architectures", "model_type", "torch_dtype"):
        hf_cfg.pop(k, None)
    config = JambaConfig(**hf_cfg, attn_implementation="eager")
    assert config.mamba_dt_rank == math.ceil(config.hidden_size / 16)
    model = JambaForCausalLM(config).eval()
    sd = {hf_name_from_legacy(k, config.layers_num_experts): v for k, v in legacy.items()}
    model.load_state_dict(sd, strict=True)
    pl, dl, greedy, _ = compute_reference(model, ref["prompt_ids"])
    src_pl = np.fromfile(os.path.join(sdir, "prompt_logits.f32"), dtype="<f4").reshape(pl.shape)
    src_dl = np.fromfile(os.path.join(sdir, "decode_logits.f32"), dtype="<f4").reshape(dl.shape)
    assert greedy == ref["greedy_ids"]
    assert np.array_equal(pl.numpy(), src_pl) and np.array_equal(dl.numpy(), src_dl), "legacy reload mismatch"
    r = dict(results[src])
    r.update(name=name, size=dir_size(fdir), shards=1)
    return r


# --------------------------------------------------------------------------------------------
# Verification of what is on disk
# --------------------------------------------------------------------------------------------

def verify_dir(fdir):
    """Load every safetensors file with the safetensors package; check the index and file sizes."""
    with open(os.path.join(fdir, "reference.json")) as f:
        ref = json.load(f)
    V, L = ref["vocab_size"], len(ref["prompt_ids"])
    assert os.path.getsize(os.path.join(fdir, "prompt_logits.f32")) == 4 * L * V
    assert os.path.getsize(os.path.join(fdir, "decode_logits.f32")) == 4 * NUM_DECODE_STEPS * V
    assert len(ref["greedy_ids"]) == NUM_DECODE_STEPS + 1
    files = sorted(f for f in os.listdir(fdir) if f.endswith(".safetensors"))
    names, dtypes = {}, set()
    for fn in files:
        with safe_open(os.path.join(fdir, fn), framework="pt") as sf:
            for k in sf.keys():
                t = sf.get_tensor(k)
                assert k not in names, f"duplicate tensor {k}"
                names[k] = fn
                dtypes.add(str(t.dtype).replace("torch.", ""))
    idx = os.path.join(fdir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        assert wm == names, "index weight_map does not match the shard contents"
    else:
        assert files == ["model.safetensors"], files
    assert dtypes == {ref["dtype_on_disk"]}, (dtypes, ref["dtype_on_disk"])
    return len(names)


def sha256_tree(root, names):
    h = {}
    for n in names:
        d = os.path.join(root, n)
        for fn in sorted(os.listdir(d)):
            with open(os.path.join(d, fn), "rb") as f:
                h[f"{n}/{fn}"] = hashlib.sha256(f.read()).hexdigest()
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output root (default: tests/testdata/fixtures)")
    ap.add_argument("--only", nargs="*", help="fixture names to (re)generate (legacy_names needs gqa_h72)")
    ap.add_argument("--print-hashes", action="store_true", help="print sha256 of every written file")
    args = ap.parse_args()

    torch.set_num_threads(1)  # same reduction order on every machine/thread count
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, safetensors "
          f"{safetensors.__version__}, numpy {np.__version__}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    selected = [s for s in FIXTURES if not args.only or s["name"] in args.only]
    results = {}
    for spec in selected:
        print(f"[{spec['name']}] generating ...", flush=True)
        if "legacy_of" in spec:
            if spec["legacy_of"] not in results:
                raise SystemExit(f"{spec['name']} needs {spec['legacy_of']} in the same run")
            r = make_legacy(spec, args.out, results)
        else:
            r = make_fixture(spec, args.out)
        results[spec["name"]] = r
        n = verify_dir(os.path.join(args.out, spec["name"]))
        print(f"[{spec['name']}] ok: seed {r['seed']} (attempt {r['attempts']}), {n} tensors, {r['shards']} "
              f"file(s), {r['size'] / 1024:.1f} KiB, prompt {r['prompt_len']}, max|logit| {r['scale']:.2f}, "
              f"checks {', '.join(f'{k} {v:.1e}' for k, v in r['checks'].items())}", flush=True)

    print("\nsummary")
    print(f"{'name':16} {'KiB':>8} {'files':>5} {'L':>3} {'min top2 margin':>16} {'min router margin':>18}  greedy_ids")
    total = 0
    for name, r in results.items():
        total += r["size"]
        router = "-" if r["router"] == float("inf") else f"{r['router']:.2e}"
        print(f"{name:16} {r['size'] / 1024:8.1f} {r['shards']:5d} {r['prompt_len']:3d} {r['margin']:16.2e} "
              f"{router:>18}  {r['greedy']}")
    print(f"{'total':16} {total / 1024:8.1f}")
    if args.print_hashes:
        for k, v in sha256_tree(args.out, list(results)).items():
            print(v, k)


if __name__ == "__main__":
    sys.exit(main())
