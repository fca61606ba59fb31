#!/usr/bin/env python3
"""Summarise Google Benchmark JSON files written by scripts/run-bench.sh.

Usage: bench-report.py RESULT.json [RESULT.json ...]

For each file, prints the run's context (threads, OpenBLAS core, OPENBLAS_CORETYPE, the raw sgemm
peak and memcpy bandwidth measured in the same run, load average) and one row per benchmark with the
median time, the median GFLOP/s or GB/s, the fraction of the same run's sgemm peak (or memcpy
bandwidth), the ratio to the raw reference ("vs raw": the benchmark's own interleaved vs_raw counter
when it has one, else the ratio of the medians of ".../tensor" and its sibling ".../raw"), and the
coefficient of variation of the time across repetitions. Ends with the matmul target check
(Tensor API >= 90% of raw sgemm for 512-2048 and the MLP shapes). Standard library only.
"""
import json
import re
import statistics
import sys

TARGET = 0.90
TARGET_RE = re.compile(r"^(matmul/[^/]+/(512x512x512|1024x1024x1024|2048x2048x2048|256x784x256|256x1024x1024)"
                       r"|linear/fwdbwd/[^/]+)/tensor$")


def base_name(b):
    """Benchmark name without Google Benchmark's suffixes (/real_time, /manual_time, _median...)."""
    name = b.get("run_name") or b["name"]
    return re.sub(r"/(real|manual)_time$", "", name)


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rows = {}    # name -> the median row (or the single iteration row when there are no aggregates)
    times = {}   # name -> list of per-repetition real times (for the CV)
    for b in data.get("benchmarks", []):
        name = base_name(b)
        if b.get("error_occurred"):
            rows[name] = {"error": b.get("error_message", "error")}
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                rows[name] = b
            elif b.get("aggregate_name") == "cv":
                times[name] = [b.get("real_time", 0.0)]  # already a ratio
        else:
            rows.setdefault(name, b)
            times.setdefault(name, []).append(b.get("real_time", 0.0))
    return data.get("context", {}), rows, times


def cv_of(name, rows, times):
    t = times.get(name, [])
    row = rows.get(name, {})
    if row.get("aggregate_name") == "median" and len(t) == 1:
        return t[0]  # Google Benchmark's cv aggregate
    if len(t) >= 2 and statistics.mean(t) > 0:
        return statistics.stdev(t) / statistics.mean(t)
    return None


def fmt(x, spec):
    """x formatted with spec, or a right-aligned '-' of the same width when x is missing."""
    if isinstance(x, (int, float)):
        return format(x, spec)
    width = int(re.match(r"[<>^]?(\d*)", spec).group(1) or 1)
    return "-".rjust(width)


def report(path):
    ctx, rows, times = load(path)
    print(f"== {path}")
    print(f"   {ctx.get('scalpel_threading', '(no scalpel header: not built with SCALPEL_BENCH_MAIN)')}")
    env = [f"{k[len('scalpel_env_'):]}={v}" for k, v in ctx.items() if k.startswith("scalpel_env_")]
    if env:
        print("   " + " ".join(env))
    peak = ctx.get("scalpel_sgemm_peak_gflops")
    if peak:
        print(f"   raw sgemm {ctx.get('scalpel_sgemm_peak_n')}^3 in this run: peak {float(peak):.1f} GFLOP/s, "
              f"median {float(ctx.get('scalpel_sgemm_median_gflops', 0)):.1f}; memcpy "
              f"{float(ctx.get('scalpel_copy_gbs', 0)):.1f} GB/s; cpu {ctx.get('scalpel_cpu_model', '?')}; "
              f"load avg {ctx.get('load_avg', '?')}; clock {ctx.get('scalpel_clock', 'wall')}")
    header = f"   {'benchmark':<46} {'time ms':>9} {'GFLOP/s|GB/s':>12} {'of peak':>8} {'vs raw':>7} {'cv':>6}"
    print(header)
    print("   " + "-" * (len(header) - 3))
    checks = []
    for name, b in rows.items():
        if "error" in b:
            print(f"   {name:<46} ERROR: {b['error']}")
            continue
        unit = b.get("time_unit", "ns")
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(unit, 1.0)
        t_ms = b.get("real_time", 0.0) * scale
        if "GFLOP/s" in b:
            rate, frac = b["GFLOP/s"], b.get("frac_of_sgemm_peak")
        elif "GB/s" in b:
            rate, frac = b["GB/s"], b.get("frac_of_copy_bw")
        else:
            rate, frac = None, None
        vs = b.get("vs_raw")
        if vs is None and name.endswith("/tensor"):
            raw = rows.get(name[: -len("/tensor")] + "/raw")
            key = "GFLOP/s" if "GFLOP/s" in b else "GB/s"
            if raw and "error" not in raw and raw.get(key):
                vs = b.get(key, 0.0) / raw[key]
        cv = cv_of(name, rows, times)
        print(f"   {name:<46} {t_ms:>9.3f} {fmt(rate, '>12.2f')} {fmt(frac, '>8.3f')} {fmt(vs, '>7.3f')} "
              f"{fmt(cv * 100 if cv is not None else None, '>5.1f')}{'%' if cv is not None else ''}")
        if TARGET_RE.match(name) and vs is not None:
            checks.append((vs, name))
    if checks:
        low = min(checks)
        met = all(v >= TARGET for v, _ in checks)
        print(f"   target (Tensor API >= {TARGET:.0%} of raw sgemm, 512-2048 and MLP shapes): "
              f"{'met' if met else 'NOT met'} in this run; lowest {low[0]:.3f} ({low[1]})")
        for v, n in sorted(checks):
            if v < TARGET:
                print(f"     below target: {n} {v:.3f}")
    print()


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        try:
            report(path)
        except (OSError, ValueError, KeyError) as e:
            print(f"bench-report: cannot summarise {path}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
