"""YAML in bounded memory: alias bombs, cycles and non-scalar labels are refused with one line
naming the file; a damaged run never hides the others in `fintune runs` or the board."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fintune.cli import app
from fintune.config import load_config, parse_yaml, read_yaml_file
from fintune.errors import ConfigError
from fintune.tracking import list_runs


def alias_bomb(levels: int = 10) -> str:
    """~1 KB of YAML whose value has 9**levels strings once its aliases are expanded."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """In a subprocess capped at 1.5 GB of address space: loading the bomb as a run config ends
    in one line naming the file, well before memory runs out."""
    path = tmp_path / "bomb.yaml"
    path.write_text("data:\n  label_map: &m\n" + textwrap.indent(alias_bomb(), "    ") + "output_dir: runs/x\n",
                    encoding="utf-8")
    assert path.stat().st_size < 2048
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
        from fintune.config import load_config
        from fintune.errors import ConfigError
        try:
            load_config({str(path)!r})
        except ConfigError as exc:
            print(exc)
            sys.exit(2)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert str(path) in done.stdout and "aliases" in done.stdout


def test_aliases_within_the_budget_still_work_and_cycles_do_not() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert parse_yaml("") is None
    with pytest.raises(ConfigError, match="contains it"):
        parse_yaml("a: &x [1, *x]\n", "cyc.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("a: [1, 2\n", "broken.yaml")


def test_label_values_must_be_names(tmp_path: Path, make_config) -> None:
    path = make_config(data={"label_map": {"0": ["neg", "ative"], "1": "positive"}})
    with pytest.raises(ConfigError, match="label_map: each value must be a single name"):
        load_config(path)


def test_a_config_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("data:\n  label_map: {0: baissier, 1: haussi\xe8re}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text"):
        read_yaml_file(path)
    out = CliRunner().invoke(app, ["data", "check", str(path)])
    assert out.exit_code == 2 and "latin.yaml" in out.output and "Traceback" not in out.output


def fake_run(root: Path, name: str, config: str, metrics: str | None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / ".fintune-run").write_text("{}", encoding="utf-8")
    (run / "config.yaml").write_text(config, encoding="utf-8")
    if metrics is not None:
        (run / "metrics.json").write_text(metrics, encoding="utf-8")
    return run


GOOD_CONFIG = "task: classification\nmodel: {kind: text, backbone: minilm}\nstrategy: {name: full}\n"
GOOD_METRICS = json.dumps({"validation": {"accuracy": 0.9}, "training": {"train_seconds": 1.0}})


@pytest.mark.parametrize("config, metrics", [
    (GOOD_CONFIG, '{"validation": {"accur'),         # truncated metrics.json
    (GOOD_CONFIG, "[1, 2, 3]"),                       # metrics.json that is not an object
    ("task: [classification\n", GOOD_METRICS),        # YAML error in config.yaml
    ("- just\n- a list\n", GOOD_METRICS),             # config.yaml that is not a mapping
    ("data:\n  x: &m\n" + textwrap.indent(alias_bomb(), "    "), GOOD_METRICS),  # a received alias bomb
])
def test_one_damaged_run_does_not_hide_the_others(tmp_path: Path, config: str, metrics: str) -> None:
    root = tmp_path / "runs"
    fake_run(root, "good", GOOD_CONFIG, GOOD_METRICS)
    fake_run(root, "damaged", config, metrics)
    assert [r["run"] for r in list_runs(root)] == ["good"]
    out = CliRunner().invoke(app, ["runs", str(root)])
    assert out.exit_code == 0, out.output
    assert "skipping" in out.output and "damaged" in out.output and "good" in out.output

    from fintune.board.listing import runs_table
    from fintune.board.jobs import Jobs

    table = runs_table(root, Jobs(root))
    assert set(table["run"]) == {"good", "damaged"}
    assert table.set_index("run").loc["damaged", "status"].startswith("damaged:")
