#!/usr/bin/python3
"""Writes tests/golden/nn_modules.json: PyTorch references for Scalpel's nn modules and models.

Each case builds a torch module that mirrors a Scalpel module EXACTLY (same structure, same
parameter and buffer names, so torch's state_dict keys are Scalpel's state_dict keys), fills every
parameter and buffer with seeded random values, runs it in float32 on the CPU and records

  state.<name>          every parameter and buffer under Scalpel's dotted name (meta["state"] lists
                        them; torch's BatchNorm num_batches_tracked is not part of Scalpel's state)
  x                     the input (tokens / targets for ByteLM, stored as integers)
  out[.k]               the output (one per ResNet head)
  cotangent[.k]         a fixed random r shaped like the output
  grad.x                d<out, r>/dx
  grad.<param>          d<out, r>/d(param) for every parameter (meta["params"] lists them)
  buffer_after.<name>   buffers after the step (BatchNorm running statistics updated in train mode)
  out_eval[.k]          eval-mode outputs after the train step, for the models with BatchNorm

ByteLM cases record logits (`out`), the mean next-byte cross-entropy (`loss`) and the gradients of
the loss. meta carries the module's options, which tests/nn/test_nn_golden.cpp reads to build the
Scalpel module, so a case is defined in exactly one place.

The reference modules are written out here (torchvision is not needed). The attention and
transformer-block references are cross-checked in this script against torch's own
nn.MultiheadAttention and nn.TransformerEncoderLayer(norm_first=True, activation="gelu") with the
weights mapped over (qkv <-> in_proj, proj <-> out_proj, fc1/fc2 <-> linear1/linear2, ln1/ln2 <->
norm1/norm2); the script fails if they disagree.

Values are written as the shortest decimal string that reads back (via double, as nlohmann-json
does) to the exact float32 value; the script verifies that for every number. Parameters and
inputs are rounded to 4 significant digits BEFORE torch runs (they are then exact float32 inputs),
which keeps the fixture small without losing anything.

Usage (needs torch 1.13; CI never runs this, the JSON is committed):
  /usr/bin/python3 tests/golden/gen_torch_nn.py            # writes tests/golden/nn_modules.json
  /usr/bin/python3 tests/golden/gen_torch_nn.py --out x.json
"""
import argparse
import json
import math
import os
import sys
import tempfile
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # deterministic reference values

CASES = {}


def case(name):
    """Registers fn(g) -> (meta, tensors) under `name`."""

    def wrap(fn):
        if name in CASES:
            raise ValueError("duplicate case " + name)
        CASES[name] = fn
        return fn

    return wrap


def short(t):
    """Rounds to 4 significant decimal digits (then float32): short exact values in the fixture."""
    a = t.detach().double().numpy()
    with np.errstate(divide="ignore"):
        mag = np.where(a == 0, 0, np.floor(np.log10(np.abs(np.where(a == 0, 1, a)))))
    scale = 10.0 ** (3 - mag)
    return torch.from_numpy(np.round(a * scale) / scale).float()


def randn(g, *shape, scale=1.0, shift=0.0):
    return short(torch.randn(tuple(shape), generator=g, dtype=torch.float32) * scale + shift)


def uniform(g, lo, hi, *shape):
    return short(torch.rand(tuple(shape), generator=g, dtype=torch.float32) * (hi - lo) + lo)


def randomize(module, g):
    """Seeded random values for every parameter and buffer, in state_dict order.

    Weights [out, in, ...] ~ N(0, 1/fan_in) (embeddings N(0, 0.5^2)); 1-D norm weights ~ U(0.6, 1.4);
    biases ~ N(0, 0.1^2); running_mean ~ N(0, 0.2^2); running_var ~ U(0.5, 1.5)."""
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "num_batches_tracked":
                continue
            if leaf == "running_mean":
                v = randn(g, *t.shape, scale=0.2)
            elif leaf == "running_var":
                v = uniform(g, 0.5, 1.5, *t.shape)
            elif leaf == "bias":
                v = randn(g, *t.shape, scale=0.1)
            elif t.dim() == 1:
                v = uniform(g, 0.6, 1.4, *t.shape)
            elif "emb" in name:
                v = randn(g, *t.shape, scale=0.5)
            else:
                fan_in = t[0].numel()
                v = randn(g, *t.shape, scale=1.0 / math.sqrt(fan_in))
            t.copy_(v)


def state_of(module):
    """Parameters and buffers under Scalpel's names (torch's num_batches_tracked dropped)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def module_case_tensors(module, g, inputs, forward, meta):
    """Records state, inputs, out(s), cotangent(s), grad.x and grad.<param> for one forward/backward.

    `forward(module, x)` returns a tensor or a list of tensors (then keys get a ".k" suffix)."""
    tensors = {}
    meta["state"] = []
    for k, v in state_of(module).items():
        tensors["state." + k] = v
        meta["state"].append(k)
    params = dict(module.named_parameters())
    meta["params"] = list(params.keys())
    meta["buffers"] = [k for k, _ in module.named_buffers() if not k.endswith("num_batches_tracked")]
    x = inputs.clone().requires_grad_(True)
    tensors["x"] = inputs
    out = forward(module, x)
    outs = out if isinstance(out, (list, tuple)) else [out]
    rs = [torch.randn(o.shape, generator=g, dtype=torch.float32) for o in outs]
    suffix = (lambda k: "." + str(k)) if isinstance(out, (list, tuple)) else (lambda k: "")
    for k, (o, r) in enumerate(zip(outs, rs)):
        tensors["out" + suffix(k)] = o.detach()
        tensors["cotangent" + suffix(k)] = r
    wrt = [x] + list(params.values())
    grads = torch.autograd.grad(outs, wrt, rs)
    tensors["grad.x"] = grads[0]
    for name, gr in zip(params.keys(), grads[1:]):
        tensors["grad." + name] = gr
    for name in meta["buffers"]:
        tensors["buffer_after." + name] = dict(module.named_buffers())[name].detach().clone()
    return tensors


# ---- reference modules (mirroring nn/*.h, same names) ----------------------------------------------

def attention(q, k, v, causal):
    """softmax(q kᵀ / sqrt(D) with key j > query i masked when causal) v; [B, H, T, D]."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[-2]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


class MultiheadSelfAttention(nn.Module):
    """nn/transformer.cpp: qkv Linear(d, 3d) rows q | k | v, heads split as [B, T, 3, H, Dh], proj."""

    def __init__(self, d, heads, causal):
        super().__init__()
        self.d, self.heads, self.causal = d, heads, causal
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = attention(qkv[0], qkv[1], qkv[2], self.causal)
        return self.proj(att.permute(0, 2, 1, 3).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """Pre-LN block: h = x + attn(ln1(x)); y = h + fc2(gelu_erf(fc1(ln2(h))))."""

    def __init__(self, d, heads, d_ff, causal=True):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = MultiheadSelfAttention(d, heads, causal)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, x):
        h = x + self.attn(self.ln1(x))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class BasicBlock(nn.Module):
    """nn/resnet.cpp BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    """CIFAR stem (3x3 conv, stride 1, no max-pool), stages [2, 2, 2, 2] of widths w..8w, K heads."""

    def __init__(self, width, heads, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for s in range(4):
            cout = width << s
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if (b == 0 and s > 0) else 1))
                cin = cout
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.heads = nn.ModuleList([nn.Linear(cin, c) for c in heads])

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        for s in range(4):
            h = getattr(self, "layer%d" % (s + 1))(h)
        f = h.mean(dim=(2, 3))
        return [head(f) for head in self.heads]


class ByteLM(nn.Module):
    """Token + position embeddings, causal pre-LN blocks, ln_f, tied (h Eᵀ) or separate bias-free head."""

    def __init__(self, vocab, layers, heads, d, d_ff, max_len, tied):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList([TransformerBlock(d, heads, d_ff, causal=True) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = None if tied else nn.Linear(d, vocab, bias=False)

    def forward(self, tokens):
        t = tokens.shape[1]
        h = self.tok_emb(tokens) + self.pos_emb(torch.arange(t))
        for b in self.blocks:
            h = b(h)
        h = self.ln_f(h)
        return self.head(h) if self.head is not None else h @ self.tok_emb.weight.t()


# ---- cross-checks of the hand-written references against torch's own modules -------------------

def check_attention_against_torch(m, x):
    d, heads = m.d, m.heads
    ref = nn.MultiheadAttention(d, heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(m.qkv.weight)
        ref.in_proj_bias.copy_(m.qkv.bias)
        ref.out_proj.weight.copy_(m.proj.weight)
        ref.out_proj.bias.copy_(m.proj.bias)
    t = x.shape[1]
    mask = torch.ones(t, t, dtype=torch.bool).triu(1) if m.causal else None
    y_ref, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    y = m(x)
    err = (y - y_ref).abs().max().item()
    assert err < 1e-5, "attention reference disagrees with nn.MultiheadAttention: max |diff| %g" % err


def check_block_against_torch(m, x, heads):
    d = m.ln1.normalized_shape[0]
    ref = nn.TransformerEncoderLayer(d, heads, m.fc1.out_features, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=True)
    ref.train()  # dropout 0; keeps torch off its inference fast path
    pairs = [(ref.self_attn.in_proj_weight, m.attn.qkv.weight), (ref.self_attn.in_proj_bias, m.attn.qkv.bias),
             (ref.self_attn.out_proj.weight, m.attn.proj.weight), (ref.self_attn.out_proj.bias, m.attn.proj.bias),
             (ref.linear1.weight, m.fc1.weight), (ref.linear1.bias, m.fc1.bias),
             (ref.linear2.weight, m.fc2.weight), (ref.linear2.bias, m.fc2.bias),
             (ref.norm1.weight, m.ln1.weight), (ref.norm1.bias, m.ln1.bias),
             (ref.norm2.weight, m.ln2.weight), (ref.norm2.bias, m.ln2.bias)]
    with torch.no_grad():
        for dst, src in pairs:
            dst.copy_(src)
    t = x.shape[1]
    y_ref = ref(x, src_mask=torch.ones(t, t, dtype=torch.bool).triu(1))
    err = (m(x) - y_ref).abs().max().item()
    assert err < 1e-5, "TransformerBlock reference disagrees with nn.TransformerEncoderLayer: max |diff| %g" % err


# ---- single layers -------------------------------------------------------------------------------

def call(m, x):
    return m(x)


@case("linear")
def _(g):
    m = nn.Linear(5, 4)
    randomize(m, g)
    meta = {"module": "Linear", "in": 5, "out": 4, "bias": True}
    return meta, module_case_tensors(m, g, randn(g, 2, 3, 5), call, meta)


@case("linear_no_bias")
def _(g):
    m = nn.Linear(6, 3, bias=False)
    randomize(m, g)
    meta = {"module": "Linear", "in": 6, "out": 3, "bias": False}
    return meta, module_case_tensors(m, g, randn(g, 4, 6), call, meta)


def conv_case(name, cin, cout, k, stride, padding, bias, x_shape):
    @case(name)
    def _(g):
        m = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias)
        randomize(m, g)
        meta = {"module": "Conv2d", "in": cin, "out": cout, "kernel": k, "stride": stride, "padding": padding,
                "bias": bias}
        return meta, module_case_tensors(m, g, randn(g, *x_shape), call, meta)


conv_case("conv2d_k3_s1_p1", 3, 4, 3, 1, 1, True, (2, 3, 6, 6))
conv_case("conv2d_k3_s2_p1", 3, 5, 3, 2, 1, True, (2, 3, 7, 7))
conv_case("conv2d_k1_s2_p0_nobias", 4, 3, 1, 2, 0, False, (2, 4, 6, 6))


@case("batchnorm2d")
def _(g):
    c = 3
    m = nn.BatchNorm2d(c, momentum=0.1, eps=1e-5)
    randomize(m, g)
    m.train()
    meta = {"module": "BatchNorm2d", "features": c, "momentum": 0.1, "eps": 1e-5}
    tensors = module_case_tensors(m, g, randn(g, 4, c, 3, 3, scale=2.0, shift=0.5), call, meta)
    m.eval()
    x_eval = randn(g, 2, c, 3, 3, scale=1.5)
    tensors["x_eval"] = x_eval
    with torch.no_grad():
        tensors["out_eval"] = m(x_eval)
    return meta, tensors


@case("layernorm")
def _(g):
    m = nn.LayerNorm(6, eps=1e-5)
    randomize(m, g)
    meta = {"module": "LayerNorm", "dim": 6, "eps": 1e-5}
    return meta, module_case_tensors(m, g, randn(g, 2, 3, 6, scale=2.0, shift=1.0), call, meta)


def attention_case(name, d, heads, causal, x_shape):
    @case(name)
    def _(g):
        m = MultiheadSelfAttention(d, heads, causal)
        randomize(m, g)
        x = randn(g, *x_shape)
        check_attention_against_torch(m, x)
        meta = {"module": "MultiheadSelfAttention", "d_model": d, "heads": heads, "causal": causal}
        return meta, module_case_tensors(m, g, x, call, meta)


attention_case("attention_causal", 8, 2, True, (2, 5, 8))
attention_case("attention_non_causal", 6, 3, False, (2, 4, 6))


@case("transformer_block")
def _(g):
    d, heads, d_ff = 8, 2, 16
    m = TransformerBlock(d, heads, d_ff, causal=True)
    randomize(m, g)
    x = randn(g, 2, 5, d)
    check_block_against_torch(m, x, heads)
    meta = {"module": "TransformerBlock", "d_model": d, "heads": heads, "d_ff": d_ff, "causal": True}
    return meta, module_case_tensors(m, g, x, call, meta)


# ---- models --------------------------------------------------------------------------------------

@case("resnet18_w4_two_heads")
def _(g):
    width, heads = 4, [5, 3]
    m = ResNet18(width, heads)
    randomize(m, g)
    m.train()
    meta = {"module": "ResNet18", "width": width, "heads": heads, "stem": "cifar"}
    x = randn(g, 2, 3, 16, 16)
    tensors = module_case_tensors(m, g, x, lambda mod, inp: mod(inp), meta)
    m.eval()
    with torch.no_grad():
        for k, o in enumerate(m(x)):
            tensors["out_eval.%d" % k] = o
    return meta, tensors


def byte_lm_case(name, tied):
    @case(name)
    def _(g):
        vocab, layers, heads, d, d_ff, max_len = 256, 2, 2, 8, 16, 8
        b, t = 2, 6
        m = ByteLM(vocab, layers, heads, d, d_ff, max_len, tied)
        randomize(m, g)
        check_block_against_torch(m.blocks[0], randn(g, b, t, d), heads)
        meta = {"module": "ByteLM", "vocab": vocab, "layers": layers, "heads": heads, "d_model": d, "d_ff": d_ff,
                "max_len": max_len, "tied": tied}
        tensors = {}
        meta["state"] = []
        for k, v in state_of(m).items():
            tensors["state." + k] = v
            meta["state"].append(k)
        params = dict(m.named_parameters())
        meta["params"] = list(params.keys())
        tokens = torch.randint(0, vocab, (b, t), generator=g)
        targets = torch.randint(0, vocab, (b, t), generator=g)
        logits = m(tokens)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        grads = torch.autograd.grad(loss, list(params.values()))
        tensors.update({"tokens": tokens, "targets": targets, "out": logits.detach(), "loss": loss.detach()})
        for n, gr in zip(params.keys(), grads):
            tensors["grad." + n] = gr
        return meta, tensors


byte_lm_case("byte_lm_tied", True)
byte_lm_case("byte_lm_untied", False)


# ---- encoding ----------------------------------------------------------------------------------

def encode_float(v):
    """Shortest decimal for the float32 value v, verified to read back (via double) exactly."""
    f32 = np.float32(v)
    if not np.isfinite(f32):
        raise ValueError("non-finite value in a fixture: %r" % v)
    s = float(str(f32))
    if np.float32(s) != f32:
        s = float(f32)  # the exact double of the float32 value always round-trips
    assert np.float32(s) == f32
    return s


def encode(t):
    t = t.detach()
    if t.dtype == torch.int64:
        return {"shape": list(t.shape), "data": [int(v) for v in t.flatten().tolist()]}
    assert t.dtype == torch.float32, t.dtype
    return {"shape": list(t.shape), "data": [encode_float(v) for v in t.flatten().tolist()]}


def run_case(name, fn):
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    meta, tensors = fn(g)
    return {"meta": meta, "tensors": {k: encode(v) for k, v in tensors.items()}}


def dumps(doc):
    """JSON with one line per tensor, so diffs of a regenerated fixture stay readable."""
    lines = ["{"]
    lines.append(' "generator": %s,' % json.dumps(doc["generator"]))
    lines.append(' "torch_version": %s,' % json.dumps(doc["torch_version"]))
    lines.append(' "cases": {')
    names = list(doc["cases"].keys())
    for ci, name in enumerate(names):
        c = doc["cases"][name]
        lines.append('  %s: {"meta": %s, "tensors": {' % (json.dumps(name), json.dumps(c["meta"], sort_keys=True)))
        tnames = list(c["tensors"].keys())
        for ti, tn in enumerate(tnames):
            sep = "," if ti + 1 < len(tnames) else ""
            lines.append("   %s: %s%s" % (json.dumps(tn), json.dumps(c["tensors"][tn], separators=(",", ":")), sep))
        lines.append("  }}" + ("," if ci + 1 < len(names) else ""))
    lines.append(" }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Temp file in the same directory, fsync, rename: a reader never sees half a fixture."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "nn_modules.json"))
    args = ap.parse_args()
    doc = {"generator": "tests/golden/gen_torch_nn.py", "torch_version": torch.__version__,
           "cases": {name: run_case(name, fn) for name, fn in CASES.items()}}
    text = dumps(doc)
    json.loads(text)  # sanity: valid JSON
    write_atomic(args.out, text)
    print("wrote %s: %d cases, %d bytes" % (args.out, len(CASES), len(text.encode())), file=sys.stderr)


if __name__ == "__main__":
    main()
