#!/usr/bin/python3
"""PyTorch worker of bench/compare_steps.cpp: one reference training step, timed.

  /usr/bin/python3 bench/compare_pytorch.py CASE [--reps N] [--threads N]

Builds the same model, shapes, loss and optimizer as the Scalpel worker (the architectures are the
golden script's, tests/golden/gen_torch_nn.py, which the golden tests prove equal to Scalpel's),
runs untimed steps for at least 1 s and at least two (as the Scalpel worker), times N steps one by
one and prints one JSON line: ms per step, peak RSS net of the runtime (VmHWM minus VmRSS after
`import torch` and one matmul), torch's thread count, the OpenBLAS library this process mapped, and
the kernels (BLAS, oneDNN ISA from DNNL_VERBOSE).
Cases: see compare_steps.cpp.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import gen_torch_nn as ref  # noqa: E402  (its import sets 1 thread; main() sets the real count)


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def mapped_blas():
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.find("/")
            if p >= 0 and "openblas" in line[p:]:
                return os.path.realpath(line[p:].strip())
    return "none"


def onednn_isa():
    """The ISA oneDNN dispatches to, from its verbose log of one small convolution."""
    if not torch.backends.mkldnn.is_available():
        return "oneDNN not built in"
    import subprocess
    code = ("import torch; torch.nn.functional.conv2d(torch.randn(4, 64, 32, 32), torch.randn(64, 64, 3, 3), "
            "padding=1)")
    env = dict(os.environ, DNNL_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "isa:" in line:
            return "oneDNN " + line.split("isa:", 1)[1].split(",")[0].strip()
    return "oneDNN (no verbose output)"


def cpu_capability():
    """ATen's own vectorised kernels: "CPU capability usage" of torch.__config__.show()."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return "ATen " + line.split(":", 1)[1].strip()
    return "ATen (capability not reported)"


def make_case(name):
    model, phase = name.split("/")
    full = phase == "step"
    g = torch.Generator().manual_seed(1)
    if model == "mlp1024":
        net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
        x, y = torch.rand(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss = lambda: F.cross_entropy(net(x), y)  # noqa: E731
    elif model in ("resnet18_w16", "resnet18_w64", "resnet18_w64_b128"):
        batch = 128 if model.endswith("b128") else 32
        net = ref.ResNet18(16 if model == "resnet18_w16" else 64, [10]).train()
        x, y = torch.randn(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        loss = lambda: F.cross_entropy(net(x)[0], y)  # noqa: E731
    elif model in ("bytelm_l4", "bytelm_l12"):
        net = ref.ByteLM(256, 4 if model == "bytelm_l4" else 12, 8, 256, 1024, 128, tied=True)
        tok, tgt = torch.randint(0, 256, (16, 128), generator=g), torch.randint(0, 256, (16, 128), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss = lambda: F.cross_entropy(net(tok).reshape(-1, 256), tgt.reshape(-1))  # noqa: E731
    elif model in ("twohead_w16_fused", "twohead_w16_floor", "twohead_w16_mixed", "twohead_w16_bloop") and full:
        return twohead(model.rsplit("_", 1)[1], g)
    elif model in ("smooth_mlp_floor", "smooth_mlp_mixed", "smooth_mlp_bloop") and full:
        return smooth_mlp(model.rsplit("_", 1)[1], g)
    else:
        raise SystemExit("compare_pytorch.py: unknown case '%s'" % name)

    def step():
        opt.zero_grad(set_to_none=False)
        loss().backward()
        if full:
            opt.step()
    return step


class Surgery:
    """Per-loss gradients of `params` (zeros where a loss does not reach), then d = g0 + λ g1 (mixed)
    or g0 + λ π(g1; ĝ0) (bloop, ĝ0 the EMA of g0 with rate ρ, updated before projecting), as
    Scalpel's surgeons do, scattered into the .grad fields. floor: the surgeons' floor, one plain
    backward per loss accumulated into .grad (λ folded into the second), no copies, no surgery;
    fused: Mixed's one backward of L0 + λ L1."""

    def __init__(self, params, method, lam, rho=0.01, eps=1e-7):
        self.params, self.method, self.lam, self.rho, self.eps = params, method, lam, rho, eps
        self.ema = None

    def grads(self, loss, retain):
        gs = torch.autograd.grad(loss, self.params, retain_graph=retain, allow_unused=True)
        return torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1)
                          for gr, p in zip(gs, self.params)])

    def apply(self, l0, l1, retain_first):
        if self.method in ("floor", "fused"):  # plain backward(s) accumulated into .grad
            for p in self.params:
                p.grad = None
            if self.method == "fused":
                (l0 + self.lam * l1).backward()
                return
            l0.backward(retain_graph=retain_first)
            (self.lam * l1).backward()
            return
        g0, g1 = self.grads(l0, retain_first), self.grads(l1, False)
        if self.method == "bloop":
            self.ema = g0.clone() if self.ema is None else self.ema.mul_(1 - self.rho).add_(g0, alpha=self.rho)
            g1 = g1 - (g1 @ self.ema) / (self.ema @ self.ema + self.eps) * self.ema
        d = g0 + self.lam * g1
        off = 0
        for p in self.params:
            n = p.numel()
            p.grad = d[off:off + n].view_as(p)
            off += n


def twohead(method, g):
    """The two-head ResNet step: both cross-entropies from one forward, Surgery with λ = 1, SGD."""
    net = ref.ResNet18(16, [10, 10]).train()
    params = list(net.parameters())
    x = torch.randn(32, 3, 32, 32, generator=g)
    y0, y1 = torch.randint(0, 10, (32,), generator=g), torch.randint(0, 10, (32,), generator=g)
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    surgery = Surgery(params, method, 1.0)

    def step():
        out = net(x)
        surgery.apply(F.cross_entropy(out[0], y0), F.cross_entropy(out[1], y1), True)
        opt.step()
    return step


def smooth_mlp(method, g):
    """The smooth-MLP step: cross-entropy and Σ_l log σ_max(W_l), σ_l = uᵀ W v after one power step
    (u, v per weight, 50 steps at the start, no graph through them), Surgery with λ = 0.1, Adam 3e-4."""
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    params = list(net.parameters())
    weights = [m.weight for m in net if isinstance(m, nn.Linear)]
    x, y = torch.rand(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g)
    opt = torch.optim.Adam(params, lr=3e-4)
    surgery = Surgery(params, method, 0.1)
    uv = [[F.normalize(torch.randn(w.shape[0], generator=g), dim=0),
           F.normalize(torch.randn(w.shape[1], generator=g), dim=0)] for w in weights]

    def power(steps):
        with torch.no_grad():
            for w, pair in zip(weights, uv):
                for _ in range(steps):
                    pair[1] = F.normalize(w.t() @ pair[0], dim=0)
                    pair[0] = F.normalize(w @ pair[1], dim=0)
    power(50)

    def step():
        l0 = F.cross_entropy(net(x), y)
        power(1)
        surgery.apply(l0, sum(torch.log(u @ w @ v) for w, (u, v) in zip(weights, uv)), False)
        opt.step()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.ones(64, 64) @ torch.ones(64, 64)  # BLAS and the thread pool set up before the baseline
    base = status_kb("VmRSS")
    step = make_case(args.case)
    warm0, warm_steps = time.perf_counter(), 0
    while warm_steps < 2 or time.perf_counter() - warm0 < 1.0:
        step()
        warm_steps += 1
    ms = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"side": "pytorch", "case": args.case, "ms": ms,
                      "rss_net_mb": (status_kb("VmHWM") - base) / 1024.0, "threads": torch.get_num_threads(),
                      "blas": mapped_blas(),
                      "kernels": "PyTorch %s; conv: %s; %s" % (torch.__version__, onednn_isa(), cpu_capability())}))


if __name__ == "__main__":
    main()
