#!/usr/bin/python3
"""Writes tests/golden/core_ops.json: PyTorch reference values for Scalpel's core ops.

Every case draws its float32 inputs from a torch.Generator seeded by the case name (crc32), runs
the op in float32 on the CPU, draws a fixed random cotangent r shaped like the output, and records
  out            the op's output,
  cotangent      r,
  grad_<input>   d<out, r>/d(input) for every float input listed in meta["inputs"].
Integer tensors (targets, ids, indices) are stored alongside and read back with GoldenFile::index().
meta carries the op's parameters (dim, keepdim, ignore_index, ...), which tests/core/test_golden.cpp
reads, so a case is defined in exactly one place.

Values are written as the shortest decimal string that reads back (via double, as nlohmann-json
does) to the exact float32 value; the script verifies that for every number.

Usage (needs torch; CI never runs this, the JSON is committed):
  /usr/bin/python3 tests/golden/gen_torch.py            # writes tests/golden/core_ops.json
  /usr/bin/python3 tests/golden/gen_torch.py --out x.json
"""
import argparse
import json
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
    """Registers fn(g) -> (meta, float_inputs, index_inputs, forward) under `name`."""

    def wrap(fn):
        if name in CASES:
            raise ValueError("duplicate case " + name)
        CASES[name] = fn
        return fn

    return wrap


# ---- input helpers (all float32, all from the case's generator) --------------------------------

def randn(g, *shape, scale=1.0):
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32) * scale


def uniform(g, lo, hi, *shape):
    return torch.rand(tuple(shape), generator=g, dtype=torch.float32) * (hi - lo) + lo


def away_from_zero(g, *shape, lo=0.3, hi=1.5):
    """|x| in [lo, hi) with random signs: keeps finite differences and kinks (relu, abs) apart."""
    mag = uniform(g, lo, hi, *shape)
    sign = torch.where(torch.rand(tuple(shape), generator=g) < 0.5, -1.0, 1.0)
    return (mag * sign).to(torch.float32)


def randint(g, n, *shape):
    return torch.randint(0, n, shape, generator=g, dtype=torch.int64)


def idx(values):
    return torch.tensor(values, dtype=torch.int64)


# ---- matrix products ------------------------------------------------------------------------

@case("matmul_2d")
def _(g):
    return {"op": "matmul"}, {"a": randn(g, 3, 4), "b": randn(g, 4, 5)}, {}, lambda a, b: a @ b


@case("matmul_batched")
def _(g):
    return {"op": "matmul"}, {"a": randn(g, 2, 3, 4), "b": randn(g, 2, 4, 5)}, {}, lambda a, b: a @ b


@case("matmul_batch_broadcast")  # [B, M, K] x [K, N]
def _(g):
    return {"op": "matmul"}, {"a": randn(g, 2, 3, 4), "b": randn(g, 4, 5)}, {}, lambda a, b: a @ b


@case("matmul_2d_x_batched")  # [M, K] x [B, K, N]
def _(g):
    return {"op": "matmul"}, {"a": randn(g, 3, 4), "b": randn(g, 2, 4, 5)}, {}, lambda a, b: a @ b


@case("matmul_batch_broadcast_4d")  # [2, 1, M, K] x [3, K, N] -> [2, 3, M, N]
def _(g):
    return {"op": "matmul"}, {"a": randn(g, 2, 1, 3, 4), "b": randn(g, 3, 4, 2)}, {}, lambda a, b: a @ b


@case("matmul_transposed_lhs")  # a.t() @ b with a stored [K, M]
def _(g):
    return {"op": "matmul_tl"}, {"a": randn(g, 4, 3), "b": randn(g, 4, 5)}, {}, lambda a, b: a.t() @ b


@case("linear_bias")
def _(g):
    ins = {"x": randn(g, 5, 4), "weight": randn(g, 3, 4), "bias": randn(g, 3)}
    return {"op": "linear"}, ins, {}, lambda x, weight, bias: F.linear(x, weight, bias)


@case("linear_3d_nobias")
def _(g):
    ins = {"x": randn(g, 2, 5, 4), "weight": randn(g, 3, 4)}
    return {"op": "linear"}, ins, {}, lambda x, weight: F.linear(x, weight)


# ---- elementwise binary with broadcasting ------------------------------------------------------

@case("add_broadcast")
def _(g):
    return {"op": "add"}, {"a": randn(g, 2, 3, 4), "b": randn(g, 3, 1)}, {}, lambda a, b: a + b


@case("add_scalar_tensor")
def _(g):
    return {"op": "add"}, {"a": randn(g, 3, 4), "b": randn(g)}, {}, lambda a, b: a + b


@case("sub_broadcast")
def _(g):
    return {"op": "sub"}, {"a": randn(g, 4, 1), "b": randn(g, 1, 5)}, {}, lambda a, b: a - b


@case("mul_broadcast")
def _(g):
    return {"op": "mul"}, {"a": randn(g, 2, 3, 4), "b": randn(g, 3, 1)}, {}, lambda a, b: a * b


@case("mul_broadcast_last")
def _(g):
    return {"op": "mul"}, {"a": randn(g, 2, 3, 4), "b": randn(g, 4)}, {}, lambda a, b: a * b


@case("div_broadcast")
def _(g):
    ins = {"a": randn(g, 3, 4), "b": away_from_zero(g, 3, 1, lo=0.5)}
    return {"op": "div"}, ins, {}, lambda a, b: a / b


@case("maximum")
def _(g):
    return {"op": "maximum"}, {"a": randn(g, 3, 4), "b": randn(g, 3, 4)}, {}, torch.maximum


@case("where_broadcast")
def _(g):
    mask = (torch.rand(2, 3, generator=g) < 0.5).to(torch.int64)  # stored as an integer tensor
    ins = {"a": randn(g, 2, 3), "b": randn(g, 1, 3)}
    return {"op": "where"}, ins, {"mask": mask}, lambda a, b: torch.where(mask != 0, a, b)


# ---- elementwise unary -------------------------------------------------------------------------

def unary(name, op, fn, make, **meta):
    @case(name)
    def _(g):
        m = {"op": op}
        m.update(meta)
        return m, {"x": make(g)}, {}, fn


unary("neg", "neg", lambda x: -x, lambda g: randn(g, 3, 4))
unary("square", "square", lambda x: x * x, lambda g: randn(g, 3, 4))
unary("pow_3", "pow", lambda x: torch.pow(x, 3.0), lambda g: randn(g, 3, 4), exponent=3.0)
unary("pow_neg_half", "pow", lambda x: torch.pow(x, -0.5), lambda g: uniform(g, 0.5, 2.0, 3, 4), exponent=-0.5)
unary("exp", "exp", torch.exp, lambda g: randn(g, 3, 4))
unary("log", "log", torch.log, lambda g: uniform(g, 0.2, 3.0, 3, 4))
unary("sqrt", "sqrt", torch.sqrt, lambda g: uniform(g, 0.2, 3.0, 3, 4))
unary("abs", "abs", torch.abs, lambda g: away_from_zero(g, 3, 4))
unary("tanh", "tanh", torch.tanh, lambda g: randn(g, 3, 5, scale=2.0))
unary("sigmoid", "sigmoid", torch.sigmoid, lambda g: randn(g, 3, 5, scale=4.0))
unary("relu", "relu", torch.relu, lambda g: away_from_zero(g, 3, 4))
unary("gelu_erf", "gelu", lambda x: F.gelu(x), lambda g: randn(g, 3, 7, scale=2.0), approximate="none")
unary("gelu_tanh", "gelu", lambda x: F.gelu(x, approximate="tanh"), lambda g: randn(g, 3, 7, scale=2.0),
      approximate="tanh")
unary("pow_0_at_zero", "pow", lambda x: torch.pow(x, 0.0), lambda g: torch.tensor([[0.0, 1.5, -2.0], [0.0, 0.25, 3.0]]),
      exponent=0.0)


# Kinks at exactly the kink: PyTorch's subgradient conventions (relu'(0) = 0, abs'(0) = 0, clamp
# passes the gradient at both bounds).
def with_kinks(g, *values):
    return torch.cat([torch.tensor(values, dtype=torch.float32), randn(g, 4)]).reshape(2, -1)


unary("relu_at_zero", "relu", torch.relu, lambda g: with_kinks(g, 0.0, -0.0))
unary("abs_at_zero", "abs", torch.abs, lambda g: with_kinks(g, 0.0, -0.0))
unary("clamp_at_bounds", "clamp", lambda x: torch.clamp(x, -0.5, 0.5), lambda g: with_kinks(g, -0.5, 0.5),
      low=-0.5, high=0.5)
unary("clamp", "clamp", lambda x: torch.clamp(x, -0.5, 0.5), lambda g: away_from_zero(g, 4, 5, lo=0.02, hi=1.0),
      low=-0.5, high=0.5)


# ---- reductions --------------------------------------------------------------------------------

def reduction(name, op, shape, fn, **meta):
    @case(name)
    def _(g):
        m = {"op": op}
        m.update(meta)
        return m, {"x": randn(g, *shape)}, {}, fn


reduction("sum_all", "sum", (3, 4), lambda x: x.sum())
reduction("sum_dims", "sum", (2, 3, 4), lambda x: x.sum(dim=(0, 2)), dims=[0, 2], keepdim=False)
reduction("sum_dim_keepdim", "sum", (2, 3, 4), lambda x: x.sum(dim=1, keepdim=True), dims=[1], keepdim=True)
reduction("mean_all", "mean", (3, 4), lambda x: x.mean())
reduction("mean_dim_neg", "mean", (2, 3, 4), lambda x: x.mean(dim=-1), dims=[-1], keepdim=False)
reduction("max_dim", "max", (3, 5, 2), lambda x: x.max(dim=1).values, dim=1, keepdim=False)
reduction("max_dim_keepdim", "max", (4, 3), lambda x: x.max(dim=0, keepdim=True).values, dim=0, keepdim=True)
reduction("max_all", "max_all", (4, 3), lambda x: x.max())
reduction("logsumexp_last", "logsumexp", (3, 5), lambda x: torch.logsumexp(x, dim=-1), dim=-1, keepdim=False)
reduction("logsumexp_dim0_keepdim", "logsumexp", (3, 5, 2), lambda x: torch.logsumexp(x, dim=0, keepdim=True),
          dim=0, keepdim=True)
reduction("norm_all", "norm", (3, 4), lambda x: torch.linalg.vector_norm(x))
reduction("norm_dim", "norm_dim", (3, 4), lambda x: torch.linalg.vector_norm(x, dim=1), dim=1, keepdim=False)


@case("norm_dim_zero_row")  # the gradient of a zero slice is 0, not NaN
def _(g):
    x = torch.cat([randn(g, 1, 4), torch.zeros(1, 4), randn(g, 1, 4)])
    return ({"op": "norm_dim", "dim": -1, "keepdim": True}, {"x": x}, {},
            lambda x: torch.linalg.vector_norm(x, dim=-1, keepdim=True))


@case("logsumexp_large")  # values around 80: a naive exp overflows float32
def _(g):
    return ({"op": "logsumexp", "dim": 1, "keepdim": False}, {"x": randn(g, 2, 6, scale=3.0) + 80.0}, {},
            lambda x: torch.logsumexp(x, dim=1))


# ---- softmax family and losses -----------------------------------------------------------------

reduction("softmax_last", "softmax", (3, 5), lambda x: torch.softmax(x, dim=-1), dim=-1)
reduction("softmax_mid", "softmax", (2, 4, 3), lambda x: torch.softmax(x, dim=1), dim=1)
reduction("log_softmax_last", "log_softmax", (3, 5), lambda x: torch.log_softmax(x, dim=-1), dim=-1)
reduction("log_softmax_mid", "log_softmax", (2, 4, 3), lambda x: torch.log_softmax(x, dim=1), dim=1)


def ce_case(name, n, c, targets, ignore_index=-100, label_smoothing=0.0, scale=2.0):
    @case(name)
    def _(g):
        t = idx(targets) if targets is not None else randint(g, c, n)
        meta = {"op": "cross_entropy", "ignore_index": ignore_index, "label_smoothing": label_smoothing}
        fn = lambda logits: F.cross_entropy(logits, t, ignore_index=ignore_index, label_smoothing=label_smoothing)
        return meta, {"logits": randn(g, n, c, scale=scale)}, {"targets": t}, fn


ce_case("cross_entropy_mean", 4, 5, [1, 0, 4, 2])
ce_case("cross_entropy_ignore", 5, 6, [3, -100, 0, 5, 1])
ce_case("cross_entropy_ignore_custom", 4, 5, [2, 0, 2, 4], ignore_index=2)
ce_case("cross_entropy_smoothing", 4, 5, [1, 0, 4, 2], label_smoothing=0.1)
ce_case("cross_entropy_smoothing_ignore", 5, 6, [3, -100, 0, 5, 1], label_smoothing=0.1)
ce_case("cross_entropy_large_logits", 3, 4, [0, 3, 1], scale=40.0)


@case("mse_loss")
def _(g):
    return {"op": "mse_loss"}, {"a": randn(g, 3, 4), "b": randn(g, 3, 4)}, {}, F.mse_loss


@case("dot")
def _(g):
    return {"op": "dot"}, {"a": randn(g, 7), "b": randn(g, 7)}, {}, lambda a, b: (a * b).sum()


# ---- shape and index ops ----------------------------------------------------------------------

@case("embedding")
def _(g):
    ids = idx([[1, 3, 1], [0, 4, 3]])  # repeated ids: their gradients add
    return {"op": "embedding"}, {"weight": randn(g, 5, 3)}, {"ids": ids}, lambda weight: F.embedding(ids, weight)


@case("gather_dim1")
def _(g):
    index = idx([[0, 3], [2, 2], [1, 0]])
    return ({"op": "gather", "dim": 1}, {"x": randn(g, 3, 4)}, {"index": index},
            lambda x: torch.gather(x, 1, index))


@case("gather_dim0")
def _(g):
    index = idx([[2, 0, 1, 1], [0, 0, 2, 1]])
    return ({"op": "gather", "dim": 0}, {"x": randn(g, 3, 4)}, {"index": index},
            lambda x: torch.gather(x, 0, index))


@case("index_select")
def _(g):
    index = idx([2, 0, 2])
    return ({"op": "index_select", "dim": 1}, {"x": randn(g, 2, 3, 2)}, {"index": index},
            lambda x: torch.index_select(x, 1, index))


@case("concat_dim1")
def _(g):
    ins = {"a": randn(g, 2, 3), "b": randn(g, 2, 2), "c": randn(g, 2, 1)}
    return {"op": "concat", "dim": 1}, ins, {}, lambda a, b, c: torch.cat([a, b, c], dim=1)


@case("stack_dim1")
def _(g):
    ins = {"a": randn(g, 2, 3), "b": randn(g, 2, 3)}
    return {"op": "stack", "dim": 1}, ins, {}, lambda a, b: torch.stack([a, b], dim=1)


@case("pad2d")
def _(g):
    return ({"op": "pad2d", "pad_h": 1, "pad_w": 2}, {"x": randn(g, 2, 2, 3)}, {},
            lambda x: F.pad(x, (2, 2, 1, 1)))


@case("views_chain")  # permute -> reshape (copy) -> narrow -> select, times another input
def _(g):
    ins = {"x": randn(g, 2, 3, 4), "y": randn(g, 3)}
    return ({"op": "views_chain"}, ins, {},
            lambda x, y: x.permute(2, 0, 1).reshape(4, 6).narrow(1, 1, 3).select(0, 2) * y)


# ---- a composite: two-layer MLP with cross-entropy -------------------------------------------

@case("mlp_cross_entropy")
def _(g):
    t = randint(g, 3, 6)
    ins = {"x": randn(g, 6, 4), "w1": randn(g, 5, 4, scale=0.5), "b1": randn(g, 5, scale=0.1),
           "w2": randn(g, 3, 5, scale=0.5), "b2": randn(g, 3, scale=0.1)}

    def fn(x, w1, b1, w2, b2):
        return F.cross_entropy(F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2), t)

    return {"op": "mlp_cross_entropy"}, ins, {"targets": t}, fn


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
        data = [int(v) for v in t.flatten().tolist()]
    else:
        assert t.dtype == torch.float32, t.dtype
        data = [encode_float(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def run_case(name, fn):
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    meta, floats, indices, forward = fn(g)
    leaves = {k: v.clone().requires_grad_(True) for k, v in floats.items()}
    out = forward(*leaves.values())
    r = torch.randn(out.shape, generator=g, dtype=torch.float32)
    grads = torch.autograd.grad(out, list(leaves.values()), r)
    meta = dict(meta)
    meta["inputs"] = list(floats.keys())
    tensors = {}
    for k, v in floats.items():
        tensors[k] = encode(v)
    for k, v in indices.items():
        tensors[k] = encode(v)
    tensors["out"] = encode(out)
    tensors["cotangent"] = encode(r)
    for k, gk in zip(floats.keys(), grads):
        tensors["grad_" + k] = encode(gk)
    return {"meta": meta, "tensors": tensors}


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
    ap.add_argument("--out", default=os.path.join(here, "core_ops.json"))
    args = ap.parse_args()
    doc = {"generator": "tests/golden/gen_torch.py", "torch_version": torch.__version__,
           "cases": {name: run_case(name, fn) for name, fn in CASES.items()}}
    text = dumps(doc)
    json.loads(text)  # sanity: valid JSON
    # Atomic write: temp file in the same directory, fsync, rename.
    d = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".core_ops.", suffix=".tmp")
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
