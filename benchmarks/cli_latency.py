"""Latency of the command line: wall time of fresh processes (median of several runs).

    python benchmarks/cli_latency.py [--runs 7] [--spec examples/heston.sde] [--wait-quiet SECONDS]

Times ``sdelang derive``, ``sdelang compile --backend torch`` and ``--backend jax``, and
``python -c "import sdelang"``, each in a new interpreter, and writes a markdown table to
benchmarks/results/cli_latency.md (the machine named: platform, CPU count, load before and after).
``--wait-quiet S`` first waits up to S seconds for the 1-minute load average to drop below 1.5 (on
a shared machine the numbers otherwise measure the neighbours).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "cli_latency.md")


def commands(spec: str):
    """(label, argv) of each command timed."""
    cli = [sys.executable, "-m", "sdelang"]
    return [
        ('python -c "import sdelang"', [sys.executable, "-c", "import sdelang"]),
        ("sdelang derive SPEC", cli + ["derive", spec]),
        ("sdelang derive SPEC --kfp", cli + ["derive", spec, "--kfp"]),
        ("sdelang compile SPEC --backend torch", cli + ["compile", spec, "--backend", "torch"]),
        ("sdelang compile SPEC --backend jax", cli + ["compile", spec, "--backend", "jax"]),
    ]


def wall_time(argv) -> float:
    """Seconds from start to exit of one process (its output discarded)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def measure(spec: str, runs: int):
    """(label, median, min, max) per command; the commands take turns, after one warm-up each."""
    table = commands(spec)
    for _, argv in table:
        wall_time(argv)
    times = {label: [] for label, _ in table}
    for _ in range(runs):
        for label, argv in table:
            times[label].append(wall_time(argv))
    return [(label, statistics.median(t), min(t), max(t)) for label, t in times.items()]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def wait_quiet(seconds: float, threshold: float = 1.5) -> None:
    """Wait (at most ``seconds``) until the 1-minute load average is below ``threshold``."""
    deadline = time.monotonic() + seconds
    while hasattr(os, "getloadavg") and os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)


def machine() -> str:
    load = load_average()
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
            f"({cpu_name()}), Python {platform.python_version()}, "
            f"load average before the runs {load}, bytecode cache "
            f"{'off (PYTHONDONTWRITEBYTECODE)' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'on'}")


def markdown(rows, spec: str, runs: int, where: str) -> str:
    lines = [
        "# CLI latency",
        "",
        f"Wall time of a fresh process, median of {runs} runs (min–max), spec `{spec}`.",
        f"Machine: {where}.",
        "",
        "| command | median (s) | min–max (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{label}` | {median:.2f} | {lo:.2f}–{hi:.2f} |" for label, median, lo, hi in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--spec", default=os.path.join("examples", "heston.sde"))
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for a 1-minute load average below 1.5")
    args = parser.parse_args(argv)
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    where = machine()
    rows = measure(args.spec, args.runs)
    text = markdown(rows, args.spec, args.runs, where + f"; after the runs {load_average()}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
