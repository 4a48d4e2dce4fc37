"""Packaging a reviewer can read: every dependency bounded below and above, the extras
fintune names exist in pyproject.toml, and a missing extra is one line saying what to install."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from fintune.errors import EXTRAS, MissingExtra, needs

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OPTIONAL = PROJECT["optional-dependencies"]


def _requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for name, items in OPTIONAL.items():
        reqs += [Requirement(r) for r in items if not r.startswith("fintune[")]
    return reqs


@pytest.mark.parametrize("req", _requirements(), ids=lambda r: r.name)
def test_every_dependency_has_a_lower_and_an_upper_bound(req: Requirement) -> None:
    operators = {spec.operator for spec in req.specifier}
    assert operators & {">=", ">", "=="}, f"{req} has no lower bound"
    assert operators & {"<", "<=", "=="}, f"{req} has no upper bound"


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_extra_fintune_names_is_in_pyproject_and_in_all(extra: str) -> None:
    assert extra in OPTIONAL, f"fintune.errors.EXTRAS names '{extra}', which pyproject.toml does not define"
    assert extra in OPTIONAL["all"][0], f"fintune[all] leaves out '{extra}'"


def test_the_constraints_file_pins_every_package_it_names() -> None:
    lines = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    assert not any(line.startswith(("torch==", "fintune")) for line in lines)  # torch: the Makefile's pin


def test_needs_names_the_extra_and_lets_other_import_errors_through() -> None:
    with pytest.raises(MissingExtra, match=r"fintune tune needs the 'tune' extra \(optuna is not installed\): "
                                           r"pip install 'fintune\[tune\]'"):
        with needs("tune", "fintune tune"):
            raise ModuleNotFoundError("No module named 'optuna.samplers'", name="optuna.samplers")
    with pytest.raises(ModuleNotFoundError):
        with needs("tune", "fintune tune"):
            raise ModuleNotFoundError("No module named 'something_else'", name="something_else")


@pytest.mark.parametrize(("command", "blocked", "extra"), [
    (["tune", "cfg.yaml"], "optuna", "tune"),
    (["serve", "runs/x"], "fastapi", "serve"),
    (["board"], "gradio", "board"),
])
def test_a_command_without_its_extra_says_which_to_install(monkeypatch, tmp_path: Path, command: list[str],
                                                           blocked: str, extra: str) -> None:
    from fintune.cli import app

    # As if the package were not installed: importing it raises ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, blocked, None)
    for name in [m for m in sys.modules if m.startswith(("fintune.workflows.tune", "fintune.deploy.server", "fintune.board"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, command)
    assert out.exit_code == 2, out.output
    assert f"pip install 'fintune[{extra}]'" in out.output and f"({blocked} is not installed)" in out.output


def test_version_is_printed() -> None:
    from importlib.metadata import version

    from fintune.cli import app

    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"fintune {version('fintune')}"
