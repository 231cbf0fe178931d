#!/usr/bin/env python3
"""Independent float64 NumPy implementation of docs' Jamba forward (jamba-model.md section 3),
checked against the committed fixtures. No torch / transformers: only numpy + safetensors.

It processes the prompt one token at a time with the decode-step recurrence (conv_state,
ssm_state, KV cache), which is mathematically the same as HF's one-shot prefill, then feeds
greedy_ids[0..15]. Reports max |ours - fixture| / max|fixture logit| per fixture.

Usage: python tools/spec_check.py [FIXTURE_DIR ...]   (default: every tests/testdata/fixtures/*)
"""

import glob
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_weights(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    w = {}
    for f in files:
        try:
            part = load_file(os.path.join(d, f))
        except TypeError:  # numpy has no bfloat16: widen the raw bits
            part = load_bf16(os.path.join(d, f))
        w.update({k: v.astype(np.float64) for k, v in part.items()})
    return w


def load_bf16(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] in ("BF16", "F32"), info["dtype"]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16
            out[k] = bits.view("<f4").reshape(info["shape"])
        else:
            out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def canonical_names(w, num_experts_of_layer):
    """Accept the legacy remote-code names (jamba-model.md section 2)."""
    out = {}
    for k, v in w.items():
        k = k.replace(".mamba.B_layernorm.", ".mamba.b_layernorm.").replace(".mamba.C_layernorm.", ".mamba.c_layernorm.")
        k = k.replace(".pre_moe_layernorm.", ".pre_ff_layernorm.")
        if ".moe." in k:
            i = int(k.split(".")[2])
            k = k.replace(".moe.experts.0.", ".feed_forward.") if num_experts_of_layer(i) == 1 else k.replace(".moe.", ".feed_forward.")
        out[k] = v
    return out


def rms(x, g, eps):
    return g * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


class Model:
    def __init__(self, d):
        c = json.load(open(os.path.join(d, "config.json")))
        self.c = c
        self.H, self.V, self.nl = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"]
        self.nh, self.nkv = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
        self.hd = self.H // self.nh
        self.eps = c["rms_norm_eps"]
        self.Di = c["mamba_expand"] * self.H
        self.N, self.K = c["mamba_d_state"], c["mamba_d_conv"]
        r = c["mamba_dt_rank"]
        self.R = math.ceil(self.H / 16) if r == "auto" else int(r)
        self.is_attn = [i % c["attn_layer_period"] == c["attn_layer_offset"] for i in range(self.nl)]
        self.n_exp = lambda i: c["num_experts"] if i % c["expert_layer_period"] == c["expert_layer_offset"] else 1
        self.topk = c["num_experts_per_tok"]
        self.w = canonical_names(load_weights(d), self.n_exp)
        if "lm_head.weight" not in self.w:
            assert c.get("tie_word_embeddings"), "lm_head missing but embeddings not tied"
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.conv = [np.zeros((self.Di, self.K)) for _ in range(self.nl)]
        self.ssm = [np.zeros((self.Di, self.N)) for _ in range(self.nl)]
        self.kv = [([], []) for _ in range(self.nl)]

    def W(self, name):
        return self.w[name]

    def lin(self, x, name, bias=True):
        y = self.W(name + ".weight") @ x
        b = self.w.get(name + ".bias")
        return y + b if (bias and b is not None) else y

    def mamba(self, i, x):
        p = f"model.layers.{i}.mamba."
        xz = self.lin(x, p + "in_proj")
        u_raw, z = xz[: self.Di], xz[self.Di:]
        cs = np.roll(self.conv[i], -1, axis=1)
        cs[:, -1] = u_raw
        self.conv[i] = cs
        cw = self.W(p + "conv1d.weight")[:, 0, :]
        u = (cs * cw).sum(-1)
        if p + "conv1d.bias" in self.w:
            u = u + self.W(p + "conv1d.bias")
        u = silu(u)
        pr = self.W(p + "x_proj.weight") @ u
        dl, B, C = pr[: self.R], pr[self.R: self.R + self.N], pr[self.R + self.N:]
        dl = rms(dl, self.W(p + "dt_layernorm.weight"), self.eps)
        B = rms(B, self.W(p + "b_layernorm.weight"), self.eps)
        C = rms(C, self.W(p + "c_layernorm.weight"), self.eps)
        delta = softplus(self.W(p + "dt_proj.weight") @ dl + self.W(p + "dt_proj.bias"))
        A = -np.exp(self.W(p + "A_log"))
        h = np.exp(delta[:, None] * A) * self.ssm[i] + (delta[:, None] * B[None, :]) * u[:, None]
        self.ssm[i] = h
        y = h @ C + self.W(p + "D") * u
        y = y * silu(z)
        return self.lin(y, p + "out_proj")

    def attn(self, i, x):
        p = f"model.layers.{i}.self_attn."
        q = (self.W(p + "q_proj.weight") @ x).reshape(self.nh, self.hd)
        k = (self.W(p + "k_proj.weight") @ x).reshape(self.nkv, self.hd)
        v = (self.W(p + "v_proj.weight") @ x).reshape(self.nkv, self.hd)
        self.kv[i][0].append(k)
        self.kv[i][1].append(v)
        Kc, Vc = np.stack(self.kv[i][0], 1), np.stack(self.kv[i][1], 1)  # [nkv, T, hd]
        g = self.nh // self.nkv
        o = np.empty((self.nh, self.hd))
        for j in range(self.nh):
            s = Kc[j // g] @ q[j] / math.sqrt(self.hd)
            s = np.exp(s - s.max())
            o[j] = (s / s.sum()) @ Vc[j // g]
        return self.W(p + "o_proj.weight") @ o.reshape(-1)

    def mlp(self, p, x):
        return self.W(p + "down_proj.weight") @ (silu(self.W(p + "gate_proj.weight") @ x) * (self.W(p + "up_proj.weight") @ x))

    def ffn(self, i, x):
        p = f"model.layers.{i}.feed_forward."
        E = self.n_exp(i)
        if E == 1:
            return self.mlp(p, x)
        r = self.W(p + "router.weight") @ x
        pr = np.exp(r - r.max())
        pr /= pr.sum()
        idx = np.argsort(-pr, kind="stable")[: self.topk]
        return sum(pr[e] * self.mlp(p + f"experts.{e}.", x) for e in idx)  # no renormalisation

    def step(self, tok):
        h = self.W("model.embed_tokens.weight")[tok].copy()
        for i in range(self.nl):
            n = rms(h, self.W(f"model.layers.{i}.input_layernorm.weight"), self.eps)
            h = h + (self.attn(i, n) if self.is_attn[i] else self.mamba(i, n))
            n = rms(h, self.W(f"model.layers.{i}.pre_ff_layernorm.weight"), self.eps)
            h = h + self.ffn(i, n)
        h = rms(h, self.W("model.final_layernorm.weight"), self.eps)
        return self.W("lm_head.weight") @ h


def check(d):
    ref = json.load(open(os.path.join(d, "reference.json")))
    V, L, S = ref["vocab_size"], len(ref["prompt_ids"]), ref["num_decode_steps"]
    pl = np.fromfile(os.path.join(d, "prompt_logits.f32"), dtype="<f4").reshape(L, V)
    dl = np.fromfile(os.path.join(d, "decode_logits.f32"), dtype="<f4").reshape(S, V)
    m = Model(d)
    ours_p = np.stack([m.step(t) for t in ref["prompt_ids"]])
    ours_d = np.stack([m.step(t) for t in ref["greedy_ids"][:S]])
    scale = max(np.abs(pl).max(), np.abs(dl).max())
    ep = np.abs(ours_p - pl).max() / scale
    ed = np.abs(ours_d - dl).max() / scale
    greedy = [int(np.argmax(ours_p[-1]))] + [int(np.argmax(x)) for x in ours_d]
    ok = ep < 1e-4 and ed < 1e-4 and greedy == ref["greedy_ids"]
    print(f"{ref['name']:16} prompt {ep:.2e}  decode {ed:.2e}  greedy {'same' if greedy == ref['greedy_ids'] else 'DIFFERENT'}"
          f"  {'ok' if ok else 'FAIL'}")
    return ok


def main():
    dirs = sys.argv[1:] or sorted(glob.glob(os.path.join(REPO_ROOT, "tests", "testdata", "fixtures", "*", "")))
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "reference.json"))]
    return 0 if all([check(d) for d in dirs]) else 1


if __name__ == "__main__":
    sys.exit(main())
