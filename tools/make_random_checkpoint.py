#!/usr/bin/env python3
"""Writes a randomly initialised Jamba checkpoint (config.json + safetensors)
for benchmarks, through transformers' own JambaForCausalLM and save_pretrained,
so both this engine and transformers load the same files. Never commit the
output: tiny-dev is 1.27 GB in fp32, 0.64 GB in bf16.

    python tools/make_random_checkpoint.py --preset tiny-dev --dtype bfloat16 --out /tmp/ck
"""
import argparse

import torch
from transformers import JambaConfig, JambaForCausalLM

# Jamba-tiny-dev's shape (ai21labs/Jamba-tiny-dev config.json), and a smaller one.
PRESETS = {
    "tiny-dev": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=16,
                     num_attention_heads=8, num_key_value_heads=2, num_experts=8,
                     num_experts_per_tok=2, vocab_size=65536),
    "small": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=8,
                  num_attention_heads=4, num_key_value_heads=2, num_experts=4,
                  num_experts_per_tok=2, vocab_size=32000),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny-dev")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    config = JambaConfig(
        **PRESETS[args.preset],
        attn_layer_period=8, attn_layer_offset=4,      # attention at i % 8 == 4
        expert_layer_period=2, expert_layer_offset=1,  # MoE at odd i
        mamba_d_state=16, mamba_d_conv=4, mamba_expand=2,
        tie_word_embeddings=False, use_mamba_kernels=False,
        max_position_embeddings=4096)
    model = JambaForCausalLM(config).to(getattr(torch, args.dtype))
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size="4GB")
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.preset} ({params / 1e6:.1f}M parameters, {args.dtype}) to {args.out}")


if __name__ == "__main__":
    main()
