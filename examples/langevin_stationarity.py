"""Check every ``examples/langevin_*.sde`` for stationarity, symbolically and by simulation.

For each spec: the symbolic verdict (``model.check_stationary``: the Kolmogorov forward equation's
right-hand side at p simplifies to zero, a proof), then for each backend the numeric one
(``sdelang.check.numeric.run_numeric_check``: particles drawn from p, simulated for several
relaxation times, compared with fresh draws of p; a test, which can only fail to reject).

    python examples/langevin_stationarity.py [--backends torch jax] [--n 4000] [--seed 0]
                                             [--figures DIR | --no-figures] [--markdown FILE]

Progress goes to standard error, one line per finished check; the table, what its columns mean and
the verdict to standard output. One picture per model (particles over p, before and after; first
backend) is written to ``--figures`` (default ``./sdelang-figures``, created when needed). Exit
status 0 when every density is proved stationary and no simulation rejects it, else 1.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIGURES = "sdelang-figures"
COLUMNS = ("model", "backend", "symbolic", "numeric", "KS min p", "energy p", "N", "dt", "T", "sampler", "seconds")

#: One line per column: what the table's numbers are.
COLUMN_NOTES = (
    ("symbolic", "'holds': the Fokker–Planck residual of p simplifies to 0 (a proof); 'FAILS' otherwise"),
    ("numeric", "'passed': no two-sample test rejects 'the simulated particles still follow p' at "
                "family-wise α = 1e-3; 'FAILED': one does"),
    ("KS min p", "smallest raw p-value of the Kolmogorov–Smirnov tests (each coordinate, Mahalanobis "
                 "distance, random projections); small values are expected among many tests, the "
                 "verdict uses Bonferroni-adjusted ones"),
    ("energy p", "p-value of the energy-distance permutation test on the whole joint law"),
    ("N", "particles simulated (compared with 4N fresh draws from p)"),
    ("dt", "Euler–Maruyama step, the largest whose bias stays below a quarter of a standard error"),
    ("T", "simulated time, about 5.5 relaxation times"),
    ("sampler", "how the draws from p were made (exact, or a reference sampler not using the dynamics)"),
    ("seconds", "wall time of the symbolic and the numeric check"),
)


def checked_density(model) -> str:
    """The density named by the spec's ``assert stationary``, else its only density."""
    for a in model.asserts:
        if a.kind == "stationary":
            return a.target
    return model.densities[0].name


def verdict(rows) -> str:
    """``6 of 6 stationary: proved and not rejected by simulation`` (or which ones are not)."""
    good = [r for r in rows if r[2] == "holds" and r[3] == "passed"]
    line = f"{len(good)} of {len(rows)} stationary: proved and not rejected by simulation"
    bad = [f"{r[0]} ({r[1]}): symbolic {r[2]}, numeric {r[3]}" for r in rows if r not in good]
    return line if not bad else line + "; NOT: " + "; ".join(bad)


def table(rows) -> str:
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(COLUMNS)] + [line(row) for row in rows])


def column_notes() -> str:
    width = max(len(name) for name, _ in COLUMN_NOTES)
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in COLUMN_NOTES)


class _Progress:
    """A tqdm bar on standard error when it is a terminal; plain lines otherwise."""

    def __init__(self, total: int):
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="check", file=sys.stderr, leave=False)
            except ImportError:  # pragma: no cover - tqdm is a dependency
                pass

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text)

    def done(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
            self.bar.update(1)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "jax"])
    parser.add_argument("--n", type=int, default=None, help="simulated particles per check (default 4000)")
    parser.add_argument("--seed", type=int, default=0)
    figures = parser.add_mutually_exclusive_group()
    figures.add_argument("--figures", metavar="DIR", default=DEFAULT_FIGURES,
                         help=f"folder for one picture per model (default ./{DEFAULT_FIGURES})")
    figures.add_argument("--no-figures", dest="figures", action="store_const", const=None,
                         help="write no pictures")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)

    specs = sorted(glob.glob(os.path.join(HERE, "langevin_*.sde")))
    total_checks = len(specs) * len(args.backends)
    print(f"Checking {len(specs)} Langevin models × {len(args.backends)} backends ({', '.join(args.backends)}): "
          "a symbolic proof, then a simulation per backend (a few seconds per check on an idle machine)...",
          file=sys.stderr, flush=True)

    import sdelang  # after the first line: importing SymPy and the backends takes a few seconds
    from sdelang.check.numeric import DEFAULT_N, run_numeric_check

    n = DEFAULT_N if args.n is None else args.n
    if args.figures is not None:
        os.makedirs(args.figures, exist_ok=True)
    rows, figures_written = [], []
    progress = _Progress(total_checks)
    began = time.perf_counter()
    try:
        for spec in specs:
            model = sdelang.load(spec)
            density = checked_density(model)
            progress.describe(f"{model.name}: symbolic")
            t0 = time.perf_counter()
            symbolic = model.check_stationary(density)
            symbolic_seconds = time.perf_counter() - t0
            for k, backend in enumerate(args.backends):
                progress.describe(f"{model.name}: {backend}")
                plot = (os.path.join(args.figures, f"{model.name}.stationarity.png")
                        if args.figures is not None and k == 0 else False)
                r = run_numeric_check(model, density, backend=backend, seed=args.seed, plot=plot, n=n)
                if r.plot_path:
                    figures_written.append(r.plot_path)
                row = (model.name, backend, "holds" if symbolic.holds else "FAILS",
                       "passed" if r.passed else "FAILED", f"{r.ks_min_p:.3g}", f"{r.energy_p:.3g}",
                       str(r.n), f"{r.dt:.3g}", f"{r.horizon:.3g}", r.sampler,
                       f"{r.elapsed + symbolic_seconds:.1f}")
                rows.append(row)
                progress.done(f"[{len(rows)}/{total_checks}] {model.name} ({backend}): symbolic {row[2]}, "
                              f"numeric {row[3]} ({row[-1]} s)")
    finally:
        progress.close()
    total = time.perf_counter() - began

    print(table(rows))
    print("\nColumns:")
    print(column_notes())
    print(f"\nTotal {total:.1f} s. Figures: " + (", ".join(figures_written) if figures_written else "none"))
    print(verdict(rows))

    if args.markdown:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("# Stationarity of the Langevin examples (`examples/langevin_stationarity.py`)\n\n")
            fh.write(f"Machine: {machine}. Family-wise level α = 1e-3 per numeric check; M = 4N fresh draws; "
                     f"seed {args.seed}; total {total:.1f} s.\n\n")
            fh.write("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n")
            for row in rows:
                fh.write("| " + " | ".join(row) + " |\n")
            fh.write("\n" + "\n".join(f"- **{name}**: {text}" for name, text in COLUMN_NOTES) + "\n")
            fh.write(f"\n{verdict(rows)}.\n")
    ok = all(r[2] == "holds" and r[3] == "passed" for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
