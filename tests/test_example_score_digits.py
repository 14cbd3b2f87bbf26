"""examples/score_digits.py --quick on the torch backend: the grids and the table are written."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.torch
def test_score_digits_quick_writes_grids_and_table(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("score_digits", None)
    import score_digits

    reports = score_digits.main(["--quick", "--backend", "torch", "--out", str(tmp_path), "--no-progress"])
    assert [r.backend for r in reports] == ["torch"]
    for name in ("real", "torch_em", "torch_pc", "torch_ode", "torch_dpm-solver++"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "| torch | Euler–Maruyama" in table and "real digits" in table and "Verdict — torch" in table
    assert "bits/dim of 4 held-out digits" in table
    rows = reports[0].rows
    assert [r.method for r in rows] == ["em", "pc", "ode", "dpm-solver++"]
    assert all(0.0 <= r.outside <= 1.0 and 0.0 < r.confidence <= 1.0 for r in rows)
