#!/usr/bin/python3
"""Writes tests/golden/optim.json: PyTorch trajectories of SGD (momentum, Nesterov, dampening,
weight decay), Adam (L2 weight decay) and AdamW (decoupled weight decay).

The small problem: two float32 parameters (shapes [3, 2] and [4]) and a fixed sequence of 5
gradients per parameter, all drawn from a torch.Generator seeded with 20240521. Each case sets
p.grad to the t-th gradient and calls optimizer.step(), five times, and records the parameters after
every step:
  p0, p1            initial values
  g<t>.<k>          the gradient of parameter k at step t (t = 0..4)
  p<k>.step<t>      parameter k after step t
meta holds the optimizer name and its hyper-parameters, which tests/optim/test_optimizers.cpp reads,
so a case is defined in exactly one place. Values are written as the shortest decimal that reads
back (via double, as nlohmann-json does) to the exact float32 value, in the tests/golden.h format.

Usage (needs torch; CI never runs this, the JSON is committed):
  /usr/bin/python3 tests/golden/gen_torch_optim.py            # writes tests/golden/optim.json
  /usr/bin/python3 tests/golden/gen_torch_optim.py --out x.json
"""
import argparse
import json
import os
import tempfile

import numpy as np
import torch

torch.set_num_threads(1)

SHAPES = [(3, 2), (4,)]
STEPS = 5

CASES = {
    "sgd_nesterov": ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01)),
    "sgd_momentum_dampening": ("sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, nesterov=False, weight_decay=0.02)),
    "sgd_plain": ("sgd", dict(lr=0.2, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)),
    "adam": ("adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    "adam_no_decay": ("adam", dict(lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0)),
    "adamw": ("adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
}


def fmt(v):
    """Shortest decimal for the float32 value v, verified to read back (via double) exactly."""
    f32 = np.float32(v)
    s = repr(float(f32))
    for digits in range(6, 18):
        cand = "%.*g" % (digits, float(f32))
        if np.float32(float(cand)) == f32:
            s = cand
            break
    assert np.float32(float(s)) == f32
    return s


def tensor_json(t):
    t = t.detach().to(torch.float32).contiguous()
    data = "[" + ",".join(fmt(x) for x in t.reshape(-1).tolist()) + "]"
    return '{"shape":%s,"data":%s}' % (json.dumps(list(t.shape)), data)


def make_optimizer(kind, params, hp):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], dampening=hp["dampening"],
                               nesterov=hp["nesterov"], weight_decay=hp["weight_decay"])
    if kind == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"])
    return torch.optim.AdamW(params, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "optim.json"))
    args = ap.parse_args()

    g = torch.Generator().manual_seed(20240521)
    init = [torch.randn(s, generator=g, dtype=torch.float32) for s in SHAPES]
    grads = [[torch.randn(s, generator=g, dtype=torch.float32) for s in SHAPES] for _ in range(STEPS)]

    lines = ["{", ' "generator": "tests/golden/gen_torch_optim.py",',
             ' "torch_version": %s,' % json.dumps(torch.__version__), ' "cases": {']
    names = sorted(CASES)
    for ci, name in enumerate(names):
        kind, hp = CASES[name]
        params = [p.clone().requires_grad_(True) for p in init]
        opt = make_optimizer(kind, params, hp)
        tensors = {}
        for k, p in enumerate(init):
            tensors["p%d" % k] = p
        for t in range(STEPS):
            for k, p in enumerate(params):
                p.grad = grads[t][k].clone()
                tensors["g%d.%d" % (t, k)] = grads[t][k]
            opt.step()
            for k, p in enumerate(params):
                tensors["p%d.step%d" % (k, t)] = p.detach().clone()
        meta = dict(hp)
        if "betas" in meta:
            meta["beta1"], meta["beta2"] = meta.pop("betas")
        meta["optimizer"] = kind
        meta["steps"] = STEPS
        meta["num_params"] = len(SHAPES)
        lines.append('  %s: {"meta": %s, "tensors": {' % (json.dumps(name), json.dumps(meta, sort_keys=True)))
        tn = sorted(tensors)
        for i, key in enumerate(tn):
            sep = "," if i + 1 < len(tn) else ""
            lines.append("   %s: %s%s" % (json.dumps(key), tensor_json(tensors[key]), sep))
        lines.append("  }}%s" % ("," if ci + 1 < len(names) else ""))
    lines.append(" }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity: valid JSON
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)), prefix=".optim.json.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)
    print("wrote %s (%d cases)" % (args.out, len(names)))


if __name__ == "__main__":
    main()
