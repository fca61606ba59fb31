#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_image (data/fuzz/corpus-image/) and fuzz_text
(data/fuzz/corpus-text/). Run from anywhere; stdlib only, except that the JPEG seed is encoded
by a throwaway C program against Debian's libstb (pkg-config stb), skipped with a note if that
is missing.

Each image seed is two option bytes (see image_entry.h) followed by a small valid file; each
text seed is two option bytes (see text_entry.h) followed by a corpus."""
import os
import struct
import subprocess
import tempfile
import zlib

root = os.path.dirname(os.path.abspath(__file__))
img_dir = os.path.join(root, "corpus-image")
txt_dir = os.path.join(root, "corpus-text")
os.makedirs(img_dir, exist_ok=True)
os.makedirs(txt_dir, exist_ok=True)


def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(w, h, color_type, channels, pixels, palette=None, interlace=0, split_idat=False):
    # Raw scanlines, each a filter byte + the row; filter types 0-4 in turn exercise every
    # unfilter path (the bytes are arbitrary but valid). Interlaced images are stored as the
    # seven Adam7 sub-images.
    passes = [(0, 0, 1, 1)] if not interlace else \
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = b""
    k = 0
    for x0, y0, dx, dy in passes:
        pw = (w - x0 + dx - 1) // dx if w > x0 else 0
        ph = (h - y0 + dy - 1) // dy if h > y0 else 0
        if pw == 0 or ph == 0:
            continue
        for y in range(ph):
            rows += bytes([k % 5]) + bytes(pixels[(k * 7 + i) % len(pixels)] for i in range(pw * channels))
            k += 1
    data = zlib.compress(rows, 9)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, interlace))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if split_idat:
        out += chunk(b"IDAT", data[:len(data) // 2]) + chunk(b"IDAT", data[len(data) // 2:])
    else:
        out += chunk(b"IDAT", data)
    return out + chunk(b"IEND", b"")


def bmp(w, h):
    row = (w * 3 + 3) & ~3
    pixels = b"".join(bytes((x * 40 + y * 7 + c * 90) % 256 for x in range(w) for c in range(3)).ljust(row, b"\0")
                      for y in range(h))
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def jpeg(w, h):
    src = r'''
#include <stb/stb_image_write.h>
#include <stdio.h>
static void put(void* f, void* d, int n) { fwrite(d, 1, n, (FILE*)f); }
int main(void) {
  unsigned char px[%d];
  for (int i = 0; i < %d; ++i) px[i] = (unsigned char)(i * 37 %% 256);
  return !stbi_write_jpg_to_func(put, stdout, %d, %d, 3, px, 90);
}''' % (w * h * 3, w * h * 3, w, h)
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "j.c")
        with open(c, "w") as f:
            f.write(src)
        try:
            flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "stb"], text=True).split()
            subprocess.check_call(["cc", c, "-o", os.path.join(d, "j")] + flags)
            return subprocess.check_output([os.path.join(d, "j")])
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"note: no JPEG seed ({e})")
            return None


gray = [(i * 29) % 256 for i in range(6 * 5)]
rgb = [(i * 11) % 256 for i in range(5 * 4 * 3)]
rgba = [(i * 13) % 256 for i in range(4 * 4 * 4)]
idx = [i % 4 for i in range(3 * 3)]
images = {
    "png_gray": bytes([0x10, 7]) + png(6, 5, 0, 1, gray),
    "png_rgb_crop": bytes([0x0F, 3]) + png(5, 4, 2, 3, rgb),
    "png_rgba": bytes([0x21, 15]) + png(4, 4, 6, 4, rgba, split_idat=True),
    "png_palette": bytes([0x05, 2]) + png(3, 3, 3, 1, idx, palette=[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]),
    "png_interlaced": bytes([0x09, 5]) + png(5, 4, 2, 3, rgb, interlace=1),
    "bmp_rgb": bytes([0x13, 4]) + bmp(5, 3),
}
j = jpeg(8, 6)
if j is not None:
    images["jpeg_rgb"] = bytes([0x0B, 6]) + j
texts = {
    "words": bytes([7, 128]) + b"the quick brown fox jumps over the lazy dog. " * 3,
    "short_held_out": bytes([4, 200]) + b"abcdefghijklmnop",
    "short_train_binary": bytes([63, 17]) + bytes(range(256)),
    "exact_multiple": bytes([9, 127]) + b"0123456789" * 5 + b"!",
}
for d, seeds in ((img_dir, images), (txt_dir, texts)):
    for n, data in seeds.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {d}")
