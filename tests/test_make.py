"""`make test` and `make demo` set themselves up once and then reuse the venv."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists()
                                or shutil.which("make") is None,
                                reason="runs only in a tree set up by make")


def make_q(*args: str) -> int:
    return subprocess.run(["make", "-q", *args, ".venv/.installed"], cwd=ROOT).returncode


def test_installed_venv_is_up_to_date_and_reinstalls_only_when_pyproject_changes():
    assert make_q() == 0  # nothing to do: a second `make test` reuses the venv
    assert make_q("-W", "pyproject.toml") == 1  # pyproject.toml newer: reinstall


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_compose_service_has_a_make_target_without_docker():
    out = subprocess.run(["make", "-n", "collector", "calibrator", "bot"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "asmm collect" in out.stdout
    assert "asmm calibrate --every 24h" in out.stdout
    assert "freqtrade trade --config user_data/config.json --strategy Avellaneda" in out.stdout
