#!/usr/bin/env python3
"""Build the tokenizer fixture and the bundled tiny Jamba model.

Writes (see tools/TOKENIZER.md for the details and the recorded outputs):

  tests/testdata/tokenizer/tokenizer.model           SentencePiece BPE, trained on tools/corpus/
  tests/testdata/tokenizer/tokenizer.json            HF tokenizers, legacy Llama layout (Replace normalizer)
  tests/testdata/tokenizer/tokenizer_metaspace.json  HF tokenizers, Metaspace pre-tokenizer layout
  tests/testdata/tokenizer/golden.json               encodings/decodings from sentencepiece and tokenizers
  tests/testdata/tiny_model/                         JambaForCausalLM (bf16 safetensors) + tokenizer files

Everything is deterministic (fixed seeds, one thread for the tokenizer trainer, fixed torch thread count).

Usage:  python tools/make_tokenizer_fixture.py [--skip-model]
"""

import argparse
import glob
import json
import os
import random
import shutil

import sentencepiece as spm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS_DIR = os.path.join(REPO_ROOT, "tools", "corpus")
TOKENIZER_DIR = os.path.join(REPO_ROOT, "tests", "testdata", "tokenizer")
MODEL_DIR = os.path.join(REPO_ROOT, "tests", "testdata", "tiny_model")

VOCAB_SIZE = 512
LAYER_OUTPUT_GAIN = 2.0
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


def random_texts(count=120, seed=1234):
    """Seeded random strings mixing the cases a tokenizer gets wrong: space runs, digits, bytes, marks."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "  ", "\n\t",
        ".,;:!?'\"()-", "éèêëàçñöüß", "日本語中文한국어", "🙂👍🏽🇫🇷€", "\u2581", "\u00a0\u200b\u3000",
    ]
    words = ["the ", "light", "house ", " and ", "<|user|>", "<|eom|>", "<|endoftext|>", "bread", " 1887"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.3:
                parts.append(rng.choice(words))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 4))))
        texts.append("".join(parts))
    return texts


def train_tokenizer(out_dir):
    # Relative paths only: the trainer records input and model_prefix in the model file.
    corpus = sorted(os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(CORPUS_DIR, "*.txt")))
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.relpath(os.path.join(out_dir, "tokenizer"), REPO_ROOT)
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
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
        os.remove(prefix + ".vocab")
    finally:
        os.chdir(cwd)
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


def make_hf_variants(base_path, out_dir):
    """tokenizer.json layouts Jamba's files may use, derived from the fixture's vocab and merges.

    They exercise the less common paths (Prepend normalizer and Strip decoder as in Llama-2,
    Metaspace split/first, added-token lstrip/rstrip/normalized, unk fusing, ignore_merges).
    """
    with open(base_path, encoding="utf-8") as f:
        base = json.load(f)
    space = "\u2581"
    replace_dec = {"type": "Replace", "pattern": {"String": space}, "content": " "}
    variants = {}

    v = json.loads(json.dumps(base))
    v["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": space},
        {"type": "Replace", "pattern": {"String": " "}, "content": space}]}
    v["decoder"]["decoders"].append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    variants["llama2_legacy"] = v

    v = json.loads(json.dumps(base))
    v["normalizer"] = None
    v["pre_tokenizer"] = {"type": "Metaspace", "replacement": space, "prepend_scheme": "first", "split": True}
    v["decoder"] = {"type": "Metaspace", "replacement": space, "prepend_scheme": "first", "split": True}
    variants["metaspace_first_split"] = v

    v = json.loads(json.dumps(base))
    for t in v["added_tokens"]:
        if t["content"] == "<|user|>":
            t["lstrip"] = t["rstrip"] = True
        if t["content"] == "<|eom|>":
            t["normalized"] = True
    v["added_tokens"].append({"id": 512, "content": "the end", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": True, "special": False})
    variants["added_token_flags"] = v

    v = json.loads(json.dumps(base))
    v["model"]["byte_fallback"] = False
    v["model"]["fuse_unk"] = True
    v["model"]["ignore_merges"] = True
    v["decoder"] = {"type": "Sequence", "decoders": [replace_dec, {"type": "Fuse"}]}
    variants["unk_no_byte_fallback"] = v

    paths = {}
    os.makedirs(os.path.join(out_dir, "hf_variants"), exist_ok=True)
    for name, spec in variants.items():
        path = os.path.join(out_dir, "hf_variants", name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        paths[name] = path
    return paths


def make_goldens(model_path, hf_paths, out_dir):
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=model_path)
    hf = {name: Tokenizer.from_file(path) for name, path in hf_paths.items()}
    cases = []
    for text in GOLDEN_TEXTS + random_texts():
        ids = sp.encode(text)
        case = {"text": text, "sp_ids": ids, "sp_decoded": sp.decode(ids)}
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
    variant_texts = GOLDEN_TEXTS + ["the end", "a the end b", "x <|user|>  y", " <|eom|>z"] + random_texts(40, seed=99)
    variants = {}
    for name, path in make_hf_variants(hf_paths["tokenizer.json"], out_dir).items():
        tok = Tokenizer.from_file(path)
        rows = []
        for text in variant_texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            rows.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
        variants[name] = rows
    golden = {
        "hf_variants": variants,
        "vocab_size": sp.get_piece_size(),
        "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "pad_id": sp.pad_id(), "unk_id": sp.unk_id(),
        "encode": cases,
        "decode": decodes,
    }
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as f:
        f.write(json_lines(golden))
    return sp


def json_lines(obj):
    """JSON with one list element per line (small diffs, no id-per-line bloat)."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = []
    for key, value in obj.items():
        if isinstance(value, dict):
            groups = []
            for name, items in value.items():
                rows = ",\n    ".join(dump(v) for v in items)
                groups.append(f"  {dump(name)}:[\n    {rows}]")
            lines.append(dump(key) + ":{\n" + ",\n".join(groups) + "}")
        elif isinstance(value, list):
            items = ",\n  ".join(dump(v) for v in value)
            lines.append(f"{dump(key)}:[\n  {items}]")
        else:
            lines.append(f"{dump(key)}:{dump(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def corpus_ids(sp):
    ids = []
    for path in sorted(glob.glob(os.path.join(CORPUS_DIR, "*.txt"))):
        with open(path, encoding="utf-8") as f:
            for para in f.read().split("\n\n"):
                para = para.strip()
                if para:
                    ids += [sp.bos_id()] + sp.encode(para) + [sp.eos_id()]
    return ids


def fit_bigram(sp, hidden, steps=400):
    """Fits embed_tokens and lm_head as a bigram model of the corpus (full-batch Adam, a few seconds).

    logits(next | cur) = rmsnorm(E[cur]) @ W.T, the path through a model whose layers add nothing.
    Returns (E with unit-RMS rows, W).
    """
    import torch

    vocab = sp.get_piece_size()
    ids = torch.tensor(corpus_ids(sp))
    counts = torch.zeros(vocab, vocab)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(vocab, hidden, generator=gen).requires_grad_()
    head = (0.01 * torch.randn(vocab, hidden, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([emb, head], lr=0.05)
    for _ in range(steps):
        unit = emb / emb.pow(2).mean(dim=1, keepdim=True).sqrt()
        loss = -(counts * torch.log_softmax(unit @ head.T, dim=1)).sum() / counts.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"bigram fit: cross-entropy {loss.item():.3f} nats/token over {len(ids)} corpus tokens")
    with torch.no_grad():
        return emb / emb.pow(2).mean(dim=1, keepdim=True).sqrt(), head.detach().clone()


def make_tiny_model(sp, out_dir):
    import torch
    from transformers import JambaConfig, JambaForCausalLM, LlamaTokenizerFast

    torch.manual_seed(20240601)
    config = JambaConfig(
        vocab_size=sp.get_piece_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=8,
        num_attention_heads=4, num_key_value_heads=2, num_experts=8, num_experts_per_tok=2,
        expert_layer_period=2, expert_layer_offset=1, attn_layer_period=8, attn_layer_offset=4,
        mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank="auto",
        max_position_embeddings=4096, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        use_mamba_kernels=False, tie_word_embeddings=False, attn_implementation="eager")
    model = JambaForCausalLM(config).eval()
    emb, head = fit_bigram(sp, config.hidden_size)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(emb)
        model.lm_head.weight.copy_(head)
        # HF's init (std 0.02) leaves the layers ~1.5% of the residual; x2 makes them ~3%, still
        # small enough that the bigram shows through.
        for name, param in model.named_parameters():
            if name.endswith(("out_proj.weight", "o_proj.weight", "down_proj.weight")):
                param.mul_(LAYER_OUTPUT_GAIN)

    model = model.to(torch.bfloat16)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok = LlamaTokenizerFast(
        vocab_file=os.path.join(TOKENIZER_DIR, "tokenizer.model"), legacy=True, add_prefix_space=False,
        from_slow=True, bos_token="<|startoftext|>", eos_token="<|endoftext|>", unk_token="<|unk|>",
        pad_token="<|pad|>")
    tok.save_pretrained(out_dir)
    for name in ("tokenizer.model", "tokenizer.json"):
        shutil.copy(os.path.join(TOKENIZER_DIR, name), out_dir)

    reloaded = JambaForCausalLM.from_pretrained(out_dir, torch_dtype=torch.float32, use_mamba_kernels=False)
    torch.manual_seed(0)
    for prompt in ("The lighthouse", "Every morning the baker"):
        ids = torch.tensor([[sp.bos_id()] + sp.encode(prompt)])
        out = reloaded.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=0)
        print(f"greedy: {sp.decode(out[0].tolist())!r} {out[0].tolist()}")
        out = reloaded.generate(ids, max_new_tokens=24, do_sample=True, temperature=0.8, top_k=0, pad_token_id=0)
        print(f"sampled (T=0.8): {sp.decode(out[0].tolist())!r}")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out_dir, "*")))
    print(f"tiny model: {sum(p.numel() for p in model.parameters())} params, {total} bytes on disk")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-model", action="store_true", help="only rebuild the tokenizer files")
    args = parser.parse_args()

    model_path = train_tokenizer(TOKENIZER_DIR)
    hf_paths = make_hf_tokenizers(model_path, TOKENIZER_DIR)
    sp = make_goldens(model_path, hf_paths, TOKENIZER_DIR)
    print(f"tokenizer: vocab {sp.get_piece_size()}")
    for text in ("Hello world", "In 2024 there were 366 days.", "日本語 🙂"):
        print(f"  {text!r} -> {sp.encode(text)} {sp.encode(text, out_type=str)}")
    if not args.skip_model:
        make_tiny_model(sp, MODEL_DIR)


if __name__ == "__main__":
    main()
