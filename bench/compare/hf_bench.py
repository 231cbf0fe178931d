#!/usr/bin/env python3
"""Prefill and decode tokens/s of Hugging Face transformers' Jamba on the CPU
(batch 1, use_mamba_kernels=False, the same checkpoint and thread count as
jamba-engine-bench). Prints one JSON object like the engine's."""
import argparse
import json
import time

import torch
from transformers import JambaForCausalLM
from transformers.models.jamba.modeling_jamba import HybridMambaAttentionDynamicCache


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--prefill", type=int, default=256)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model = JambaForCausalLM.from_pretrained(args.model, torch_dtype=dtype,
                                             use_mamba_kernels=False).eval()
    gen = torch.Generator().manual_seed(7)
    prompt = torch.randint(0, model.config.vocab_size, (1, args.prefill), generator=gen)
    with torch.inference_mode():
        best = float("inf")
        for _ in range(max(1, args.reps)):
            cache = HybridMambaAttentionDynamicCache(model.config, 1, dtype=dtype)
            start = time.perf_counter()
            out = model(prompt, past_key_values=cache, use_cache=True,
                        cache_position=torch.arange(args.prefill), num_logits_to_keep=1)
            best = min(best, time.perf_counter() - start)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        start = time.perf_counter()
        for step in range(args.decode):
            out = model(token, past_key_values=cache, use_cache=True,
                        cache_position=torch.tensor([args.prefill + step]))
            token = out.logits[:, -1].argmax(-1, keepdim=True)
        decode_s = time.perf_counter() - start
    print(json.dumps({
        "engine": "transformers", "backend": f"torch-{torch.__version__}-{args.dtype}",
        "threads": torch.get_num_threads(), "prefill_tokens": args.prefill, "prefill_s": best,
        "prefill_tok_s": args.prefill / best, "decode_tokens": args.decode,
        "decode_s": decode_s, "decode_tok_s": args.decode / decode_s}))


if __name__ == "__main__":
    main()
