"""The command line under hostile and careless use (issue 10): no file is ever replaced that should
not be, nothing blocks on a FIFO or reads /dev/zero forever, every error exits 2 (bad input) or 1
(a claim that does not hold) with a message and no traceback."""
from __future__ import annotations

import os
import stat

import pytest

from sdelang.cli import main

OU = """model OU {
    state x
    param theta = 1.0 in (0, inf)
    dx = -theta * x dt + dW
}
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "ou.sde"
    path.write_text(OU)
    return path


def run(args, capsys):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_compile_refuses_to_overwrite_its_own_spec(spec, capsys):
    status, _, err = run(["compile", spec, "--backend", "torch", "-o", spec], capsys)
    assert status == 2 and "the spec" in err
    assert spec.read_text() == OU


def test_compile_refuses_a_link_to_its_own_spec(spec, tmp_path, capsys):
    link = tmp_path / "link.py"
    link.symlink_to(spec)
    status, _, err = run(["compile", spec, "--backend", "torch", "-o", link], capsys)
    assert status == 2 and "the spec" in err
    assert spec.read_text() == OU and link.is_symlink()


def test_compile_writes_through_a_link_and_keeps_it(spec, tmp_path, capsys):
    target = tmp_path / "generated.py"
    target.write_text("old")
    link = tmp_path / "out.py"
    link.symlink_to(target)
    status, _, _ = run(["compile", spec, "--backend", "jax", "-o", link], capsys)
    assert status == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "class OU" in target.read_text()


def test_compile_refuses_a_fifo_without_blocking(spec, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    status, _, err = run(["compile", spec, "--backend", "torch", "-o", fifo], capsys)
    assert status == 2 and "not a regular file" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_compile_refuses_a_device_and_a_directory(spec, tmp_path, capsys):
    for target in ("/dev/null", tmp_path):
        status, _, err = run(["compile", spec, "--backend", "torch", "-o", target], capsys)
        assert status == 2 and "not a regular file" in err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "directory"])
def test_reading_something_that_is_not_a_file_ends_at_once(source, tmp_path, capsys):
    if source == "fifo":
        source = tmp_path / "fifo"
        os.mkfifo(source)
    elif source == "directory":
        source = tmp_path
    status, _, err = run(["derive", source], capsys)
    assert status == 2 and "cannot read spec" in err


def test_a_huge_spec_is_refused(tmp_path, capsys):
    big = tmp_path / "big.sde"
    with open(big, "w") as fh:
        fh.write(OU)
        fh.write("#" * (11 * 2 ** 20))
    status, _, err = run(["derive", big], capsys)
    assert status == 2 and "larger than" in err


def test_check_with_an_unknown_backend_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "l.sde"
    path.write_text("model L {\n state x\n density p = exp(-x^2/2)\n dx = -x/2 dt + dW\n assert stationary p\n}\n")
    status, _, err = run(["check", path, "--numeric", "--backend", "nosuch"], capsys)
    assert status == 2 and "unknown backend" in err


@pytest.mark.parametrize("density, equation", [
    ("-exp(-x^2/2)", "dx = -x dt + dW"),
    ("x", "dx = dW"),
    ("exp(x^2/2)", "dx = x/2 dt + dW"),
])
def test_check_does_not_call_a_non_density_stationary(density, equation, tmp_path, capsys):
    path = tmp_path / "n.sde"
    path.write_text(f"model N {{\n state x\n density p = {density}\n {equation}\n assert stationary p\n}}\n")
    status, out, _ = run(["check", path], capsys)
    assert status == 1 and "not a probability density" in out


def test_numeric_check_refuses_a_negative_density(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "n.sde"
    path.write_text("model N {\n state x\n density p = -exp(-x^2/2)\n dx = -x dt + dW\n assert stationary p\n}\n")
    status, _, err = run(["check", path, "--numeric"], capsys)
    assert status == 1 and "not a probability density" in err


def test_zero_density_is_a_bad_spec(tmp_path, capsys):
    path = tmp_path / "z.sde"
    path.write_text("model Z {\n state x\n density p = 0*x\n dx = -x dt + dW\n assert stationary p\n}\n")
    status, _, err = run(["check", path], capsys)
    assert status == 2 and "z.sde:3:" in err


def test_overflowing_values_never_reach_generated_code(tmp_path, capsys):
    path = tmp_path / "o.sde"
    path.write_text("model O {\n state x\n param a = 1e308*10\n dx = -a*x dt + dW\n}\n")
    out_file = tmp_path / "o.py"
    status, _, err = run(["compile", path, "--backend", "torch", "-o", out_file], capsys)
    assert status == 2 and "o.sde:3:" in err and not out_file.exists()
    status, out, err = run(["derive", path], capsys)
    assert status == 2 and "inf" not in out


@pytest.mark.parametrize("separator, name", [("\u2028", "U+2028"), ("\x85", "U+0085"), ("\x0c", "form feed")])
def test_carets_stay_on_the_line_after_unusual_separators(separator, name, tmp_path, capsys):
    path = tmp_path / "s.sde"
    path.write_text(f"model S {{\n state x{separator}\n dx = -y dt + dW\n}}\n", encoding="utf-8")
    status, _, err = run(["derive", path], capsys)
    assert status == 2
    first = err.splitlines()[0]
    # the form feed is blank space to the parser: the error is the unknown 'y' on line 3
    assert first.startswith(f"{path}:2:") or first.startswith(f"{path}:3:8: unknown name 'y'"), (name, err)
    shown, caret = err.split("\n")[1:3]
    assert len(caret) <= len(shown) and caret.strip() == "^"


def test_old_mac_line_endings_parse(tmp_path, capsys):
    path = tmp_path / "cr.sde"
    path.write_bytes(OU.replace("\n", "\r").encode())
    status, out, _ = run(["derive", path], capsys)
    assert status == 0 and "model OU" in out
    bad = tmp_path / "bad.sde"
    bad.write_bytes(OU.replace("theta * x", "thetta * x").replace("\n", "\r").encode())
    status, _, err = run(["derive", bad], capsys)
    lines = err.split("\n")
    assert status == 2 and lines[0].startswith(f"{bad}:4:11: unknown name 'thetta'")
    assert len(lines[2]) <= len(lines[1])


def test_bare_sdelang_prints_help_and_V_prints_the_version(capsys):
    status, out, _ = run([], capsys)
    assert status == 0 and "derive" in out and "compile" in out and "check" in out
    status, out, _ = run(["-V"], capsys)
    assert status == 0 and out.startswith("sdelang ")


def test_check_with_nothing_to_check_says_what_could_be_checked(spec, capsys):
    status, out, _ = run(["check", spec], capsys)
    assert status == 0 and "nothing to check" in out
    assert "density p = ..." in out and "--stationary" in out
