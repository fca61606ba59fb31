#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_parsers (data/fuzz/corpus/). Run from anywhere; stdlib only.

Each seed is one mode byte (see fuzz_parsers.cpp) followed by a small valid file, so the fuzzer
starts from inputs that reach deep into every parser."""
import gzip
import os
import struct

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)


def idx(dims, payload):
    return struct.pack(">I", 0x800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


images = idx([2, 4, 4], [(i * 17) % 256 for i in range(32)])
labels = idx([2], [3, 9])
big_images = idx([3, 28, 28], [(i * 7) % 256 for i in range(3 * 784)])
big_labels = idx([3], [0, 5, 9])
cifar = b"".join(bytes([lab]) + bytes((i * 13 + lab) % 256 for i in range(3072)) for lab in (1, 9))


def mnist_pair(img, lab):
    return bytes([0]) + struct.pack(">H", len(img)) + img + lab


seeds = {
    "mnist_raw": mnist_pair(images, labels),
    "mnist_gz": mnist_pair(gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)),
    "mnist_28": mnist_pair(big_images, big_labels),
    "idx3": bytes([1, 1]) + images,
    "idx1": bytes([1, 0]) + labels,
    "cifar": bytes([2]) + cifar,
    "cifar_one": bytes([2]) + cifar[:3073],
    "gzip": bytes([3]) + gzip.compress(b"scalpel " * 64, mtime=0),
    "gzip_two_members": bytes([3]) + gzip.compress(b"a" * 10, mtime=0) + gzip.compress(b"b" * 10, mtime=0),
}
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {here}")
