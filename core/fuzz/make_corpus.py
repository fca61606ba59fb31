#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_state_dict (core/fuzz/corpus/). Run from anywhere; stdlib only.

Each seed is the flag byte of state_dict_entry.h followed by a valid checkpoint in format version 1
or 2 (layout in core/state_dict.h): flag 1 makes the entry re-patch both CRCs after a mutation, so
the fuzzer explores the structure; flag 0 keeps the checksums honest."""
import os
import struct
import zlib

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)


def name(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def tensor(n, dims, values):
    return name(n) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d) for d in dims) + \
        b"".join(struct.pack("<f", v) for v in values)


def scalar(n, kind, value):
    out = name(n) + bytes([kind])
    if kind == 0:
        return out + struct.pack("<q", value)
    if kind == 1:
        return out + struct.pack("<d", value)
    return out + name(value)


def checkpoint(version, tensors, scalars, step=-1):
    head = b"SCALPEL1" + struct.pack("<IIQQ", version, 0, len(tensors), len(scalars))
    if version == 2:
        head += struct.pack("<q", step)
        head += struct.pack("<I", zlib.crc32(head))
    body = head + b"".join(tensors) + b"".join(scalars)
    return body + struct.pack("<I", zlib.crc32(body))


weights = [tensor("layer1.weight", [2, 3], [0.5, -1, 2, 0, 1e-8, 3.25]), tensor("layer1.bias", [3], [1, 2, 3]),
           tensor("scalar", [], [0.25]), tensor("empty", [0, 4], [])]
scalars = [scalar("loop.step", 0, 120), scalar("optim.lr", 1, 0.01), scalar("method", 2, "bloop")]
seeds = {
    "v2_full": bytes([1]) + checkpoint(2, weights, scalars, 120),
    "v2_full_strict": bytes([0]) + checkpoint(2, weights, scalars, 120),
    "v2_tensors": bytes([1]) + checkpoint(2, weights, []),
    "v2_scalars": bytes([1]) + checkpoint(2, [], scalars, 120),
    "v2_empty": bytes([1]) + checkpoint(2, [], []),
    "v1_full": bytes([1]) + checkpoint(1, weights[:2], scalars),
    "v1_strict": bytes([0]) + checkpoint(1, weights[:1], scalars[:1]),
}
for n, data in seeds.items():
    with open(os.path.join(here, n), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {here}")
