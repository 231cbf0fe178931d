#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* from the repository's
test fixtures (tests/testdata). Deterministic; run from the repository root.
Crash inputs (crash-*, regression-*) in the same folders are kept as they are.
"""
import glob
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
TESTDATA = os.path.join(ROOT, "tests", "testdata")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, body = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def tensor_proto(dtype, shape, data):
    return (field(1, 0, dtype) + field(2, 2, b"".join(varint(d) for d in shape)) +
            field(3, 2, data))


def expert_request(tag, layer, groups):
    out = field(1, 0, tag) + field(2, 0, layer)
    for expert, x in groups:
        out += field(3, 2, field(1, 0, expert) + field(2, 2, x))
    return out


def chunk(s):
    """A u16 little-endian length, then the bytes (checkpoint_fuzzer.cc)."""
    return struct.pack("<H", len(s)) + s


def main():
    # safetensors_fuzzer: small files of every supported dtype, metadata,
    # zero-size and unaligned tensors, and the header of the tiny model.
    small = [
        ("a", "F32", [2, 2], f32(1, 2, 3, 4)),
        ("b", "BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
        ("c", "F16", [1, 1], b"\x00\x3c"),
    ]
    write("safetensors_fuzzer", "small", safetensors(small, {"format": "pt"}))
    write("safetensors_fuzzer", "empty_tensor", safetensors([("z", "F32", [0, 4], b"")]))
    write("safetensors_fuzzer", "unaligned",
          safetensors([("h", "F16", [1], b"\x00\x3c"), ("f", "F32", [1], f32(7))]))
    write("safetensors_fuzzer", "no_tensors", safetensors([]))
    with open(os.path.join(TESTDATA, "tiny_model", "model.safetensors"), "rb") as f:
        tiny = f.read(4096)
    write("safetensors_fuzzer", "tiny_model_prefix", tiny)

    # checkpoint_fuzzer: a flags byte (bit 0: with index), the config text,
    # the index when flagged, then safetensors bytes.
    with open(os.path.join(TESTDATA, "tiny_model", "config.json"), "rb") as f:
        config = f.read()
    names = [("model.embed_tokens.weight", "F32", [2, 2], f32(1, 2, 3, 4)),
             ("model.layers.0.mamba.D", "BF16", [2], b"\x80\x3f\x00\x40"),
             ("model.layers.1.feed_forward.experts.0.down_proj.weight", "F16", [1], b"\x00\x3c")]
    weights = safetensors(names)
    write("checkpoint_fuzzer", "single", b"\x00" + chunk(config) + weights)
    index = json.dumps({"metadata": {"total_size": 10},
                        "weight_map": {n: "model-00001-of-00001.safetensors" for n, *_ in names}})
    write("checkpoint_fuzzer", "indexed",
          b"\x01" + chunk(config) + chunk(index.encode()) + weights)
    with open(os.path.join(TESTDATA, "fixtures", "legacy_names", "config.json"), "rb") as f:
        write("checkpoint_fuzzer", "legacy_config", b"\x00" + chunk(f.read()) + weights)

    # Tokenizers: the model files and the HF variants.
    with open(os.path.join(TESTDATA, "tokenizer", "tokenizer.model"), "rb") as f:
        write("sp_model_fuzzer", "tokenizer.model", f.read())
    for path in [os.path.join(TESTDATA, "tokenizer", "tokenizer.json"),
                 os.path.join(TESTDATA, "tokenizer", "tokenizer_metaspace.json")] + sorted(
                     glob.glob(os.path.join(TESTDATA, "tokenizer", "hf_variants", "*.json"))):
        with open(path, "rb") as f:
            write("hf_tokenizer_fuzzer", os.path.basename(path), f.read())
    with open(os.path.join(TESTDATA, "tokenizer", "golden.json")) as f:
        golden = json.load(f)
    for i, case in enumerate(golden["encode"][:40]):
        ids = golden["decode"][i % len(golden["decode"])]["ids"]
        raw = struct.pack("<%di" % len(ids), *ids)
        write("tokenizer_text_fuzzer", "golden%02d" % i,
              bytes([len(ids)]) + raw + case["text"].encode())

    # expert_request_fuzzer: valid requests (f32 and bf16 rows for hosted
    # experts of an MoE layer) and a few malformed ones.
    hidden = 64
    rows = f32(*[0.01 * (i % 13) for i in range(2 * hidden)])
    bf16 = b"".join(struct.pack("<f", 0.5)[2:] for _ in range(hidden))
    write("expert_request_fuzzer", "f32_one_group",
          expert_request(1, 1, [(0, tensor_proto(1, [2, hidden], rows))]))
    write("expert_request_fuzzer", "bf16_two_groups",
          expert_request(2, 3, [(2, tensor_proto(2, [1, hidden], bf16)),
                                (4, tensor_proto(1, [2, hidden], rows))]))
    write("expert_request_fuzzer", "empty_rows",
          expert_request(3, 5, [(6, tensor_proto(1, [0, hidden], b""))]))
    write("expert_request_fuzzer", "unhosted",
          expert_request(4, 1, [(1, tensor_proto(1, [2, hidden], rows))]))
    write("expert_request_fuzzer", "bad_shape",
          expert_request(5, 1, [(0, tensor_proto(1, [2, hidden, 1], rows))]))


if __name__ == "__main__":
    main()
