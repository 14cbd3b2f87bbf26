"""Check every ``examples/langevin_*.sde`` for stationarity, symbolically and by simulation.

For each spec and backend: the symbolic verdict (``model.check_stationary``: the KFP right-hand
side at p is identically zero) and the numeric one (``sdelang.check.numeric.run_numeric_check``:
particles drawn from p, simulated for several relaxation times, compared with fresh draws of p).

    python examples/langevin_stationarity.py [--backends torch jax] [--n 4000] [--markdown FILE]

Prints a table; ``--markdown`` also writes it (and the plot's path) as a Markdown file.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time

import sdelang
from sdelang.check.numeric import DEFAULT_N, run_numeric_check

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ("model", "backend", "symbolic", "numeric", "KS min p", "energy p", "N", "dt", "T", "sampler", "seconds")


def checked_density(model) -> str:
    """The density named by the spec's ``assert stationary``, else its only density."""
    for a in model.asserts:
        if a.kind == "stationary":
            return a.target
    return model.densities[0].name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "jax"])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="simulated particles per check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)

    rows, plot_path, all_ok = [], None, True
    began = time.perf_counter()
    for spec in sorted(glob.glob(os.path.join(HERE, "langevin_*.sde"))):
        model = sdelang.load(spec)
        density = checked_density(model)
        t0 = time.perf_counter()
        symbolic = model.check_stationary(density)
        symbolic_seconds = time.perf_counter() - t0
        for k, backend in enumerate(args.backends):
            plot = k == 0 and plot_path is None  # one picture: the first spec, first backend
            r = run_numeric_check(model, density, backend=backend, seed=args.seed, plot=plot, n=args.n)
            plot_path = plot_path or r.plot_path
            all_ok &= bool(symbolic.holds) and r.passed
            rows.append((model.name, backend, "holds" if symbolic.holds else "FAILS",
                         "passed" if r.passed else "FAILED", f"{r.ks_min_p:.3g}", f"{r.energy_p:.3g}",
                         str(r.n), f"{r.dt:.3g}", f"{r.horizon:.3g}", r.sampler,
                         f"{r.elapsed + symbolic_seconds:.1f}"))
    total = time.perf_counter() - began

    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))
    print(line(COLUMNS))
    for row in rows:
        print(line(row))
    print(f"\ntotal {total:.1f} s; plot: {plot_path}")

    if args.markdown:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("# Stationarity of the Langevin examples (`examples/langevin_stationarity.py`)\n\n")
            fh.write(f"Machine: {machine}. Family-wise level α = 1e-3 per numeric check; M = 4N fresh draws; "
                     f"seed {args.seed}; total {total:.1f} s.\n\n")
            fh.write("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n")
            for row in rows:
                fh.write("| " + " | ".join(row) + " |\n")
            fh.write(f"\nPlot (before/after over p): `{os.path.relpath(plot_path, os.path.dirname(HERE)) if plot_path else None}`\n")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
