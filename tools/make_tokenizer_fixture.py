#!/usr/bin/env python3
"""Build the tokenizer fixture and the bundled tiny Jamba model.

Writes (see tools/TOKENIZER.md for the details and the recorded outputs):

  tests/testdata/tokenizer/tokenizer.model           SentencePiece BPE, trained on tools/corpus/
  tests/testdata/tokenizer/tokenizer.json            HF tokenizers, legacy Llama layout (Replace normalizer)
  tests/testdata/tokenizer/tokenizer_metaspace.json  HF tokenizers, Metaspace pre-tokenizer layout
  tests/testdata/tokenizer/golden.json               encodings/decodings from sentencepiece and tokenizers
  tests/testdata/tiny_model/                         JambaForCausalLM (bf16 safetensors) + tokenizer files

Everything is deterministic (fixed seeds, one thread for the tokenizer trainer, fixed torch thread count).

Usage:  python tools/make_tokenizer_fixture.py [--steps N] [--skip-model]
"""

import argparse
import glob
import json
import os
import shutil
import tempfile
import time

import sentencepiece as spm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS_DIR = os.path.join(REPO_ROOT, "tools", "corpus")
TOKENIZER_DIR = os.path.join(REPO_ROOT, "tests", "testdata", "tokenizer")
MODEL_DIR = os.path.join(REPO_ROOT, "tests", "testdata", "tiny_model")

VOCAB_SIZE = 512
USER_DEFINED = ["<|bom|>", "<|eom|>", "<|system|>", "<|user|>", "<|assistant|>"]

# Strings whose encodings are checked by tests/router (C++ against these goldens).
GOLDEN_TEXTS = [
    "",
    "Hello world",
    "The lighthouse on the northern cape was built in 1887.",
    "In 2024 there were 366 days; 12 divided by 4 is 3.",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand a tab\nand a newline\n\n",
    "café naïve résumé",
    "日本語のテキストと中文",
    "emoji: 🙂👍🏽 and a flag 🇫🇷",
    "<|user|>What is the time?<|eom|><|assistant|>",
    "literal special text <|endoftext|> and <|startoftext|>",
    "the block char \u2581 itself and \u2581\u2581 twice",
    "Tom counted 114 steps; 0.5 + 0.25 = 0.75",
    " ",
    "\u00a0non-breaking\u00a0space and zero\u200bwidth",
    "x",
]


def train_tokenizer(out_dir):
    corpus = sorted(glob.glob(os.path.join(CORPUS_DIR, "*.txt")))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "tokenizer")
        spm.SentencePieceTrainer.train(
            input=",".join(corpus),
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=VOCAB_SIZE,
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            normalization_rule_name="identity",
            pad_id=0, pad_piece="<|pad|>",
            bos_id=1, bos_piece="<|startoftext|>",
            eos_id=2, eos_piece="<|endoftext|>",
            unk_id=3, unk_piece="<|unk|>",
            user_defined_symbols=USER_DEFINED,
            num_threads=1,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
        shutil.copy(prefix + ".model", os.path.join(out_dir, "tokenizer.model"))
    return os.path.join(out_dir, "tokenizer.model")


def make_hf_tokenizers(model_path, out_dir):
    """Converts the SentencePiece model with transformers' LlamaConverter (as Jamba ships it)."""
    from transformers import LlamaTokenizerFast

    paths = {}
    for name, legacy in (("tokenizer.json", True), ("tokenizer_metaspace.json", False)):
        tok = LlamaTokenizerFast(
            vocab_file=model_path, legacy=legacy, add_prefix_space=False, from_slow=True,
            bos_token="<|startoftext|>", eos_token="<|endoftext|>", unk_token="<|unk|>", pad_token="<|pad|>")
        spec = json.loads(tok.backend_tokenizer.to_str())
        # LlamaConverter assumes Llama's layout (unk = id 0); ours has unk at id 3.
        spec["model"]["unk_token"] = "<|unk|>"
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False, indent=1)
            f.write("\n")
        paths[name] = path
    return paths


def make_goldens(model_path, hf_paths, out_dir):
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=model_path)
    hf = {name: Tokenizer.from_file(path) for name, path in hf_paths.items()}
    cases = []
    for text in GOLDEN_TEXTS:
        ids = sp.encode(text)
        case = {
            "text": text,
            "sp_ids": ids,
            "sp_pieces": sp.id_to_piece(ids) if ids else [],
            "sp_decoded": sp.decode(ids),
        }
        for name, tok in hf.items():
            key = name.replace(".json", "")
            hf_ids = tok.encode(text, add_special_tokens=False).ids
            case[key + "_ids"] = hf_ids
            case[key + "_decoded"] = tok.decode(hf_ids, skip_special_tokens=True)
        cases.append(case)
    # Decoding of hand-picked id sequences (byte fallback, specials, unk) by both libraries.
    byte = lambda b: sp.piece_to_id("<0x%02X>" % b)
    id_cases = [
        [1, sp.piece_to_id("▁the"), 2],
        [byte(0xE2), byte(0x82), byte(0xAC)],
        [byte(0xE2), byte(0x82)],
        [byte(0xFF), sp.piece_to_id("a")],
        [3, sp.piece_to_id("a")],
        [sp.piece_to_id("<|user|>"), sp.piece_to_id("▁the")],
    ]
    decodes = []
    for ids in id_cases:
        entry = {"ids": ids, "sp": sp.decode(ids)}
        for name, tok in hf.items():
            entry[name.replace(".json", "")] = tok.decode(ids, skip_special_tokens=True)
        decodes.append(entry)
    golden = {
        "vocab_size": sp.get_piece_size(),
        "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "pad_id": sp.pad_id(), "unk_id": sp.unk_id(),
        "encode": cases,
        "decode": decodes,
    }
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return sp


def corpus_ids(sp):
    ids = []
    for path in sorted(glob.glob(os.path.join(CORPUS_DIR, "*.txt"))):
        with open(path, encoding="utf-8") as f:
            for para in f.read().split("\n\n"):
                para = para.strip()
                if para:
                    ids += [sp.bos_id()] + sp.encode(para) + [sp.eos_id()]
    return ids


def make_tiny_model(sp, steps, out_dir):
    import torch
    from transformers import JambaConfig, JambaForCausalLM, LlamaTokenizerFast

    torch.manual_seed(20240601)
    torch.set_num_threads(2)
    config = JambaConfig(
        vocab_size=sp.get_piece_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=8,
        num_attention_heads=4, num_key_value_heads=2, num_experts=8, num_experts_per_tok=2,
        expert_layer_period=2, expert_layer_offset=1, attn_layer_period=8, attn_layer_offset=4,
        mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank="auto",
        max_position_embeddings=4096, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        use_mamba_kernels=False, tie_word_embeddings=False, attn_implementation="eager")
    model = JambaForCausalLM(config)

    data = torch.tensor(corpus_ids(sp), dtype=torch.long)
    seq_len, batch = 64, 8
    gen = torch.Generator().manual_seed(7)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / steps))
    model.train()
    start = time.time()
    for step in range(steps):
        starts = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=gen)
        x = torch.stack([data[s:s + seq_len] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.time() - start:.0f}s", flush=True)
    model.eval()

    model = model.to(torch.bfloat16)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    shutil.copy(os.path.join(TOKENIZER_DIR, "tokenizer.model"), out_dir)
    tok = LlamaTokenizerFast(
        vocab_file=os.path.join(TOKENIZER_DIR, "tokenizer.model"), legacy=True, add_prefix_space=False,
        from_slow=True, bos_token="<|startoftext|>", eos_token="<|endoftext|>", unk_token="<|unk|>",
        pad_token="<|pad|>")
    tok.save_pretrained(out_dir)
    shutil.copy(os.path.join(TOKENIZER_DIR, "tokenizer.json"), out_dir)

    reloaded = JambaForCausalLM.from_pretrained(out_dir, torch_dtype=torch.float32, use_mamba_kernels=False)
    for prompt in ("The lighthouse", "Every morning the baker"):
        ids = torch.tensor([[sp.bos_id()] + sp.encode(prompt)])
        out = reloaded.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=0)
        print(f"greedy: {sp.decode(out[0].tolist())!r}")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out_dir, "*")))
    print(f"tiny model: {sum(p.numel() for p in model.parameters())} params, {total} bytes on disk")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="next-token training steps (0: random weights)")
    parser.add_argument("--skip-model", action="store_true", help="only rebuild the tokenizer files")
    args = parser.parse_args()

    model_path = train_tokenizer(TOKENIZER_DIR)
    hf_paths = make_hf_tokenizers(model_path, TOKENIZER_DIR)
    sp = make_goldens(model_path, hf_paths, TOKENIZER_DIR)
    print(f"tokenizer: vocab {sp.get_piece_size()}")
    for text in ("Hello world", "In 2024 there were 366 days.", "日本語 🙂"):
        print(f"  {text!r} -> {sp.encode(text)} {sp.encode(text, out_type=str)}")
    if not args.skip_model:
        make_tiny_model(sp, args.steps, MODEL_DIR)


if __name__ == "__main__":
    main()
