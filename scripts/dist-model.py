#!/usr/bin/env python3
"""Projected step time and sweep days of each `paper` preset under data parallelism (a model on
paper, for docs/performance-notes.md): measured compute per step on one 2-core rank, divided over
N ranks at the same global batch, plus an alpha-beta model of ring all-reduce of the per-loss
gradients, with no overlap of communication and backward (what Scalpel does today).

    python3 scripts/dist-model.py > table.md
"""

# Ring all-reduce of S bytes over N ranks: 2(N-1) messages of S/N bytes each way.
ALPHA = 5e-6  # s per message (a typical MPI latency on Ethernet/InfiniBand clusters)
LINKS = {"10 Gb/s": 10e9 / 8, "25 Gb/s": 25e9 / 8, "100 Gb/s": 100e9 / 8}
RANKS = [8, 64, 256]

# study: (parameters, per-loss gradients reduced per step, measured s/step on 2 threads,
#         global batch, steps per run, runs in the sweep)
# Step times: README "Presets and runtimes" (Bloop); translation at batch 256 extrapolated
# linearly from 12.1 s at batch 16. Parameter counts: ResNet-18 CIFAR width 64 (11.2 M), ByteLM 12
# layers d256 d_ff 1024 (9.5 M), the 6+6-layer d1024 translation model (176 M, measured).
STUDIES = {
    "weight norm (ResNet-18 w64, b128)": (11.2e6, 2, 3.13, 128, 39_000, 60),
    "multi-task (two-head ResNet-18 w64, b256)": (11.2e6, 2, 9.22, 256, 19_500, 52),
    "joint LM (ByteLM 12 x d256, b128)": (9.5e6, 2, 47.9, 128, 300_000, 84),
    "translation (6+6 x d1024, b256)": (176e6, 2, 12.1 * 16, 256, 100_000, 32),
}


def ring_seconds(nbytes, n, beta):
    return 2 * (n - 1) * ALPHA + 2 * (n - 1) / n * nbytes / beta


def fmt_days(seconds):
    d = seconds / 86400
    if d >= 365:
        return f"{d / 365:.1f} y"
    if d >= 1:
        return f"{d:.1f} d"
    return f"{seconds / 3600:.1f} h"


def main():
    print("| study | ranks | rows per rank | compute / step | link | all-reduce / step | step | comm share | whole sweep |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (params, grads, step1, batch, steps, runs) in STUDIES.items():
        nbytes = params * grads * 4
        for n in RANKS:
            comp = step1 / n
            rows = batch / n
            for link, beta in LINKS.items():
                comm = ring_seconds(nbytes, n, beta)
                step = comp + comm
                note = "" if rows >= 1 else " (fewer rows than ranks: not runnable)"
                print(f"| {name} | {n} | {rows:g}{note} | {comp * 1e3:.0f} ms | {link} | {comm * 1e3:.0f} ms "
                      f"| {step * 1e3:.0f} ms | {100 * comm / step:.0f} % | {fmt_days(step * steps * runs)} |")


if __name__ == "__main__":
    main()
