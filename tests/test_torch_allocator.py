"""sdelang_torch.allocator: the malloc settings are applied once per process at the first sdelang
torch call, follow SDELANG_TORCH_MALLOC, and reject an unknown value (each case in a fresh
process, since the settings and their record hold for the whole process)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

PROBE = ("import sdelang_torch.allocator as a, sdelang_torch.threads as t\n"
         "assert a._applied is None\n"
         "with t.intra_op_threads(10):\n"
         "    pass\n"
         "print(a._applied, a.keep_freed_memory())\n")


def probe(value):
    env = {k: v for k, v in os.environ.items() if k != "SDELANG_TORCH_MALLOC"}
    if value is not None:
        env["SDELANG_TORCH_MALLOC"] = value
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)


GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("value", [None, "auto"])
def test_the_default_applies_the_settings_at_the_first_call_on_glibc(value):
    done = probe(value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ([str(GLIBC)] * 2)


def test_off_leaves_malloc_alone():
    done = probe("off")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_an_unknown_value_is_refused_by_name():
    done = probe("yes")
    assert done.returncode != 0 and "SDELANG_TORCH_MALLOC must be 'auto' or 'off'" in done.stderr
