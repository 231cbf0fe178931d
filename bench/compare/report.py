#!/usr/bin/env python3
"""Reads run.sh's cpu_results.jsonl and prints, per checkpoint, tokens/s of
this engine and transformers, their ratio and the rooflines: decode = read
bandwidth / bytes per token, prefill = best GEMM GFLOP/s / FLOPs per token.
Where the engine bench probed the GEMM around each prefill (--gemm_probe),
the prefill's share of the peak is also given paired: each prefill against
the peak of its own moment, the median over the prefills. Writes a bar plot."""
import argparse
import json
import math
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def layer_kinds(c):
    """Per layer: (mixer, ffn) with mixer in {attn, mamba}, ffn in {moe, dense}."""
    out = []
    for i in range(c["num_hidden_layers"]):
        attn = i % c["attn_layer_period"] == c["attn_layer_offset"]
        moe = c["num_experts"] > 1 and i % c["expert_layer_period"] == c["expert_layer_offset"]
        out.append(("attn" if attn else "mamba", "moe" if moe else "dense"))
    return out


def per_token_cost(c, wbytes, context):
    """(weight + state bytes read per decode token, matmul MACs per token w/o lm_head)."""
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = H // nh
    Di = c["mamba_expand"] * H
    R = c.get("mamba_dt_rank") or math.ceil(H / 16)
    N, K = c["mamba_d_state"], c["mamba_d_conv"]
    k, E = c["num_experts_per_tok"], c["num_experts"]
    macs, f32_bytes = 0, 0
    for mixer, ffn in layer_kinds(c):
        if mixer == "mamba":
            macs += 2 * Di * H + (R + 2 * N) * Di + Di * R + H * Di
            f32_bytes += 4 * (Di * K + Di * N + 3 * Di) + 2 * 4 * Di * N  # conv, A, D, biases; state r+w
        else:
            macs += 2 * H * nh * hd + 2 * H * nkv * hd
            f32_bytes += 2 * 4 * context * nkv * hd  # K and V cache read
        macs += E * H + k * 3 * I * H if ffn == "moe" else 3 * I * H
    weight_bytes = (macs + V * H) * wbytes + f32_bytes
    return weight_bytes, macs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--plot", required=True)
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    # The VM's bandwidth drifts by about 10% over minutes: the probe runs before and
    # after the engines, and the higher read counts (a roofline must not be beaten).
    stream = max((r for r in rows if r["kind"] == "stream"), key=lambda r: r["read_gbs"])
    gemm = [r for r in rows if r["kind"] == "gemm"]
    # The fast MatMul on row-major weights or on weight panels (as the engine
    # loads them), whichever is faster.
    fast = {d: (f"fast_{d}", f"fast_{d}_panels") for d in ("f32", "bf16")}
    peak = {d: max(r["gflops"] for r in gemm if r["impl"] in fast[d] and r["M"] >= 1024)
            for d in ("f32", "bf16")}
    blas = max((r["gflops"] for r in gemm if r["impl"] == "openblas_sgemm" and r["M"] >= 1024),
               default=float("nan"))
    print(f"\nread bandwidth {stream['read_gbs']} GB/s (triad {stream['triad_gbs']}) at "
          f"{stream['threads']} threads; best GEMM: fast f32 {peak['f32']}, fast bf16 "
          f"{peak['bf16']}, OpenBLAS sgemm {blas} GFLOP/s")
    runs = {}
    for r in rows:
        if r["kind"] == "run":
            runs.setdefault((r["preset"], r["dtype"]), {})[r["engine"]] = r
    header = ("| checkpoint | prefill tok/s: jamba / HF / ratio | prefill roofline, % | "
              "prefill, % of the paired GEMM peak | decode tok/s: jamba / HF / ratio | "
              "decode roofline, % |")
    print(header + "\n|" + "---|" * 6)
    bars = []
    for (preset, dtype), pair in runs.items():
        jam, hf = pair["jamba"], pair["transformers"]
        config = json.load(open(os.path.join(jam["ckpt"], "config.json")))
        wbytes = 2 if dtype == "bfloat16" else 4
        P, D = jam["prefill_tokens"], jam["decode_tokens"]
        bytes_tok, macs = per_token_cost(config, wbytes, P + D // 2)
        H, nh = config["hidden_size"], config["num_attention_heads"]
        attn_layers = sum(m == "attn" for m, _ in layer_kinds(config))
        flops_tok = 2 * macs + attn_layers * 4 * H * P / 2 + 2 * config["vocab_size"] * H / P
        dec_roof = stream["read_gbs"] * 1e9 / bytes_tok
        pre_roof = peak["f32" if wbytes == 4 else "bf16"] * 1e9 / flops_tok
        paired = "-"
        if "gemm_peak_gflops_reps" in jam:
            shares = [100 * t * flops_tok / (g * 1e9) for t, g in
                      zip(jam["prefill_tok_s_reps"], jam["gemm_peak_gflops_reps"])]
            paired = (f"{statistics.median(shares):.0f}% (of {len(shares)}: "
                      f"{min(shares):.0f}-{max(shares):.0f})")
        print(f"| {preset} {dtype} ({bytes_tok / 1e6:.0f} MB/token, {flops_tok / 1e6:.0f} "
              f"MFLOP/token) | {jam['prefill_tok_s']:.0f} / {hf['prefill_tok_s']:.1f} / "
              f"{jam['prefill_tok_s'] / hf['prefill_tok_s']:.1f}x | {pre_roof:.0f}, "
              f"{100 * jam['prefill_tok_s'] / pre_roof:.0f}% | {paired} | "
              f"{jam['decode_tok_s']:.1f} / "
              f"{hf['decode_tok_s']:.1f} / {jam['decode_tok_s'] / hf['decode_tok_s']:.1f}x | "
              f"{dec_roof:.0f}, {100 * jam['decode_tok_s'] / dec_roof:.0f}% |")
        bars.append((f"{preset}\n{dtype}", jam, hf, pre_roof, dec_roof))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, phase, roof_i in ((axes[0], "decode", 4), (axes[1], "prefill", 3)):
        x = range(len(bars))
        for off, label, get in ((-0.27, "jamba (this engine)", lambda b: b[1][f"{phase}_tok_s"]),
                                (0.0, "transformers", lambda b: b[2][f"{phase}_tok_s"]),
                                (0.27, "roofline", lambda b: b[roof_i])):
            ax.bar([i + off for i in x], [get(b) for b in bars], width=0.27, label=label)
        ax.set_xticks(list(x), [b[0] for b in bars])
        ax.set_yscale("log")
        ax.set_ylabel("tokens/s (batch 1)")
        ax.set_title(f"{phase}, {stream['threads']} threads")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
