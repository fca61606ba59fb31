#!/usr/bin/python3
"""Writes tests/golden/nn_ops.json: PyTorch references for conv2d, pooling, batch_norm, layer_norm, attention.

Every case draws its float32 inputs from a torch.Generator seeded by the case name (crc32), runs the
op in float32 on the CPU, draws a fixed random cotangent r shaped like the output, and records
  <input>        every float input (meta["inputs"] lists the differentiable ones, in call order),
  out            the op's output,
  cotangent      r,
  grad_<input>   d<out, r>/d(input) for every input in meta["inputs"].
batch_norm cases also record one training step's updated running statistics
(running_mean_after, running_var_after, from running_mean / running_var before) and then an eval
pass on a second input x_eval with those statistics: out_eval, cotangent_eval, grad_eval_<input>.
Attention has no functional form in torch 1.13, so it is written out: softmax(q kᵀ / sqrt(D) with
key j > query i set to -inf when causal) v.
meta carries the op's parameters (stride, padding, kernel, causal, momentum, eps, ...), which
tests/core/test_nn_ops.cpp reads, so a case is defined in exactly one place.

Values are written as the shortest decimal string that reads back (via double, as nlohmann-json
does) to the exact float32 value; the script verifies that for every number.

Usage (needs torch; CI never runs this, the JSON is committed):
  /usr/bin/python3 tests/golden/gen_torch_nn_ops.py            # writes tests/golden/nn_ops.json
  /usr/bin/python3 tests/golden/gen_torch_nn_ops.py --out x.json
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


def randn(g, *shape, scale=1.0):
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32) * scale


def uniform(g, lo, hi, *shape):
    return torch.rand(tuple(shape), generator=g, dtype=torch.float32) * (hi - lo) + lo


def with_grads(g, inputs, forward, prefix=""):
    """Runs forward(*inputs) and returns {out, cotangent, grad_<name>} (names prefixed by `prefix`)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = forward(*leaves.values())
    r = torch.randn(out.shape, generator=g, dtype=torch.float32)
    grads = torch.autograd.grad(out, list(leaves.values()), r)
    res = {"out" + prefix: out.detach(), "cotangent" + prefix: r}
    for k, gk in zip(leaves.keys(), grads):
        res["grad" + prefix + "_" + k] = gk
    return res


# ---- convolution -------------------------------------------------------------------------------

def conv_case(name, x_shape, w_shape, stride, padding, bias=True):
    @case(name)
    def _(g):
        ins = {"x": randn(g, *x_shape), "weight": randn(g, *w_shape, scale=0.5)}
        if bias:
            ins["bias"] = randn(g, w_shape[0], scale=0.5)
        meta = {"op": "conv2d", "stride": list(stride), "padding": list(padding), "inputs": list(ins.keys())}
        fwd = lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding)
        return meta, dict(ins, **with_grads(g, ins, fwd))


conv_case("conv2d_s1_p1", (2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (1, 1))
conv_case("conv2d_s2_p1", (2, 3, 7, 7), (5, 3, 3, 3), (2, 2), (1, 1))
conv_case("conv2d_s1_p0_1x1", (2, 4, 3, 3), (3, 4, 1, 1), (1, 1), (0, 0))
conv_case("conv2d_rect_kernel_stride21_pad01_nobias", (2, 2, 6, 7), (3, 2, 3, 2), (2, 1), (0, 1), bias=False)


# ---- pooling -----------------------------------------------------------------------------------

def pool_case(name, op, x_shape, kernel, stride, padding):
    @case(name)
    def _(g):
        ins = {"x": randn(g, *x_shape)}
        meta = {"op": op, "kernel": kernel, "stride": stride, "padding": padding, "inputs": ["x"]}
        if op == "max_pool2d":
            fwd = lambda x: F.max_pool2d(x, kernel, stride, padding)
        else:
            fwd = lambda x: F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True)
        return meta, dict(ins, **with_grads(g, ins, fwd))


pool_case("max_pool2d_k2_s2", "max_pool2d", (2, 2, 6, 6), 2, 2, 0)
pool_case("max_pool2d_k3_s2_p1", "max_pool2d", (2, 3, 7, 7), 3, 2, 1)
pool_case("avg_pool2d_k2_s2", "avg_pool2d", (2, 2, 6, 6), 2, 2, 0)
pool_case("avg_pool2d_k3_s2_p1", "avg_pool2d", (2, 3, 7, 7), 3, 2, 1)


@case("global_avg_pool2d")
def _(g):
    ins = {"x": randn(g, 2, 3, 4, 5)}
    return {"op": "global_avg_pool2d", "inputs": ["x"]}, dict(ins, **with_grads(g, ins, lambda x: x.mean(dim=(2, 3))))


# ---- normalization -----------------------------------------------------------------------------

def bn_case(name, x_shape, affine, momentum=0.1, eps=1e-5):
    @case(name)
    def _(g):
        c = x_shape[1]
        ins = {"x": randn(g, *x_shape, scale=2.0) + 0.5}
        if affine:
            ins["weight"] = uniform(g, 0.5, 1.5, c)
            ins["bias"] = randn(g, c, scale=0.5)
        rm = randn(g, c, scale=0.3)
        rv = uniform(g, 0.5, 2.0, c)
        x_eval = randn(g, *x_shape, scale=1.5)
        tensors = dict(ins)
        tensors["running_mean"] = rm.clone()
        tensors["running_var"] = rv.clone()
        tensors["x_eval"] = x_eval
        rm_t, rv_t = rm.clone(), rv.clone()

        def train(x, weight=None, bias=None):
            return F.batch_norm(x, rm_t, rv_t, weight, bias, training=True, momentum=momentum, eps=eps)

        tensors.update(with_grads(g, ins, train))
        tensors["running_mean_after"] = rm_t.clone()
        tensors["running_var_after"] = rv_t.clone()

        eval_ins = dict(ins)
        eval_ins["x"] = x_eval

        def evaluate(x, weight=None, bias=None):
            return F.batch_norm(x, rm_t, rv_t, weight, bias, training=False, momentum=momentum, eps=eps)

        tensors.update(with_grads(g, eval_ins, evaluate, prefix="_eval"))
        meta = {"op": "batch_norm", "momentum": momentum, "eps": eps, "inputs": list(ins.keys())}
        return meta, tensors


bn_case("batch_norm_4d_affine", (4, 3, 5, 5), True)
bn_case("batch_norm_2d_affine", (8, 5), True, momentum=0.25)
bn_case("batch_norm_4d_no_affine", (3, 2, 3, 4), False, eps=1e-3)


def ln_case(name, x_shape, affine, eps=1e-5):
    @case(name)
    def _(g):
        d = x_shape[-1]
        ins = {"x": randn(g, *x_shape, scale=2.0) + 1.0}
        if affine:
            ins["weight"] = uniform(g, 0.5, 1.5, d)
            ins["bias"] = randn(g, d, scale=0.5)
        fwd = lambda x, w=None, b=None: F.layer_norm(x, (d,), w, b, eps=eps)
        meta = {"op": "layer_norm", "eps": eps, "inputs": list(ins.keys())}
        return meta, dict(ins, **with_grads(g, ins, fwd))


ln_case("layer_norm_affine", (3, 4, 6), True)
ln_case("layer_norm_no_affine", (5, 8), False)


# ---- attention ---------------------------------------------------------------------------------

def attention(q, k, v, causal):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        mask = torch.ones(tq, tk, dtype=torch.bool).triu(1)  # key j > query i
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def attn_case(name, b, h, tq, tk, d, dv, causal):
    @case(name)
    def _(g):
        ins = {"q": randn(g, b, h, tq, d), "k": randn(g, b, h, tk, d), "v": randn(g, b, h, tk, dv)}
        meta = {"op": "scaled_dot_product_attention", "causal": causal, "inputs": ["q", "k", "v"]}
        return meta, dict(ins, **with_grads(g, ins, lambda q, k, v: attention(q, k, v, causal)))


attn_case("attention_causal", 2, 2, 5, 5, 4, 3, True)
attn_case("attention_non_causal", 2, 2, 5, 5, 4, 3, False)
attn_case("attention_cross_lengths", 1, 3, 3, 6, 4, 2, False)


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


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "nn_ops.json"))
    args = ap.parse_args()
    doc = {"generator": "tests/golden/gen_torch_nn_ops.py", "torch_version": torch.__version__,
           "cases": {name: run_case(name, fn) for name, fn in CASES.items()}}
    text = dumps(doc)
    json.loads(text)  # sanity: valid JSON
    # Atomic write: temp file in the same directory, fsync, rename.
    d = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".nn_ops.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print("wrote %s: %d cases, %d bytes" % (args.out, len(CASES), len(text.encode())), file=sys.stderr)


if __name__ == "__main__":
    main()
