"""benchmarks/gpu_check.py: its comparison logic (planted discrepancies are flagged) and a CPU smoke run."""
import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


gpu_check = load_script()


# ------------------------------------------------------------------------------------ statistics
def paired_runs(n=4000, seed=0):
    """Two runs from shared initial states with independent noise (as EM on two devices)."""
    rng = np.random.default_rng(seed)
    x_init = rng.standard_normal((n, 2))
    run = lambda: 0.6 * x_init + np.array([1.0, -0.5]) + 0.8 * rng.standard_normal((n, 2))  # noqa: E731
    return run(), run()


def test_statistics_accept_same_law():
    a, b = paired_runs()
    result = gpu_check.compare_statistics(a, b)
    assert result.kind == "statistics" and result.passed, result.metric


def test_statistics_flag_a_mean_offset_of_a_few_standard_errors():
    a, b = paired_runs()
    se = (a - b)[:, 0].std(ddof=1) / np.sqrt(len(a))
    assert gpu_check.compare_statistics(a + [2 * se, 0.0], b).passed       # well within 5 SE
    flagged = gpu_check.compare_statistics(a + [8 * se, 0.0], b)          # 8 SE: a real discrepancy
    assert not flagged.passed, flagged.metric


def test_statistics_flag_a_covariance_error():
    a, b = paired_runs()
    mean = a.mean(0)
    assert not gpu_check.compare_statistics(mean + 1.1 * (a - mean), b).passed  # variance ×1.21


def test_statistics_unpaired_and_broken_inputs():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3000, 3)), rng.standard_normal((2000, 3))
    assert gpu_check.compare_statistics(a, b, paired=False).passed
    assert not gpu_check.compare_statistics(a + 0.3, b, paired=False).passed
    bad = a.copy()
    bad[5, 1] = np.nan
    assert not gpu_check.compare_statistics(bad, a).passed
    assert not gpu_check.compare_statistics(a, b).passed  # paired needs the same particles


# ------------------------------------------------------------------------------------ pathwise
def test_pathwise_tolerance_and_planted_offset():
    ref = np.random.default_rng(2).standard_normal((500, 2)) * 3
    rounded = ref.astype(np.float32).astype(np.float64)
    assert gpu_check.compare_paths(rounded, ref, **gpu_check.FLOW_TOL).passed
    assert gpu_check.compare_paths(rounded, ref, **gpu_check.SCORE_TOL).passed
    off = rounded.copy()
    off[17, 0] += 0.01
    assert not gpu_check.compare_paths(off, ref, **gpu_check.FLOW_TOL).passed
    # a quantile tolerates a rare outlier, not a systematic one
    assert gpu_check.compare_paths(off, ref, **gpu_check.SAME_NOISE_TOL).passed
    assert not gpu_check.compare_paths(rounded * 1.01, ref, **gpu_check.SAME_NOISE_TOL).passed
    assert not gpu_check.compare_paths(rounded[:10], ref, **gpu_check.FLOW_TOL).passed
    assert not gpu_check.compare_paths(np.full_like(ref, np.inf), ref, **gpu_check.FLOW_TOL).passed


def test_report_fails_on_an_errored_phase():
    report = gpu_check.Report(quick=True)

    def broken():
        raise RuntimeError("can't convert cuda:0 device type tensor to numpy")

    gpu_check.run_row(report, "torch", "log_prob", "CPU float64", "8", broken)
    assert len(report.failures()) == 1 and "RuntimeError" in report.rows[0].error
    assert "**NO**" in report.markdown(0.0)


# ------------------------------------------------------------------------------------ smoke run
def table_rows(text):
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if line.startswith("|") and len(cells) == 11 and cells[0] in ("torch", "jax"):
            rows.append(cells)
    return rows


@pytest.mark.slow
def test_quick_cpu_run_lists_every_phase(tmp_path):
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--backend", "both",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "no GPU found: ran on cpu" in proc.stdout or "ran on cpu (as asked)" in proc.stdout
    text = out.read_text()
    assert "CPU smoke run" in text and "torch " in text and "jax " in text
    rows = table_rows(text)
    for backend in ("torch", "jax"):
        phases = {r[1] for r in rows if r[0] == backend}
        assert set(gpu_check.PHASES) <= phases, (backend, phases)
    assert all(r[7] == "yes" for r in rows), [r for r in rows if r[7] != "yes"]
    assert "particles·steps/s" in text
    throughput = [line for line in text.splitlines() if line.startswith(("| torch | simulate (", "| jax | simulate ("))]
    assert len(throughput) == 2, throughput


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
