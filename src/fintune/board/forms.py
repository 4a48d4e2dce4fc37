"""The board's form: uploads, the columns of a file, the run config it builds, the data check
as Markdown, and the status lines (always escaped: messages quote user input)."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

from fintune.config import RunConfig, load_config, validate_config
from fintune.data.load import read_table
from fintune.errors import FintuneError

BOARD = ".board"  # under the runs folder: uploads and the configs the board wrote
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# Messages quote file names, columns, run names and cell values: escaped, they are never markup.
def ok(message: str) -> str:
    return f"<div class='ok'>{html.escape(message)}</div>"


def error(exc: Exception | str) -> str:
    return f"<div class='error'>error: {html.escape(str(exc))}</div>"


def stage_upload(path: str, runs: Path) -> Path:
    """Copy an uploaded file under RUNS/.board/uploads, so the run config can name it later."""
    target = runs / BOARD / "uploads" / Path(path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def file_columns(path: str) -> list[str]:
    """The columns of a data file, read as training reads it (DataError when unreadable)."""
    if not path or not Path(path).is_file():
        raise FintuneError(f"no such file: {path or '(none)'}; upload a file or give a path on this machine")
    table = read_table(path, "auto", "utf-8")
    return [str(c) for c in table.columns]


def build_config(runs: Path, name: str, path: str, task: str, kind: str, text_column: str | None,
                 feature_columns: list[str] | None, label_column: str | None, date_column: str | None,
                 backbone: str, strategy: str, epochs: float, max_steps: float, batch_size: float, lr: float,
                 max_length: float, base: str | None = None) -> RunConfig:
    """The run config from the form, validated by the same models as a YAML file. With ``base``
    (a YAML file), the form's fields go on top of that config, so everything the form does not
    show (cleaning such as ``replace_urls``, decisions, tracking) is the file's: the board's data
    check then counts what ``fintune data check FILE`` counts."""
    if not NAME.match(name or ""):
        raise FintuneError("run name: letters, digits, '_', '-' or '.', starting with a letter or digit")
    raw: dict[str, Any] = {
        "output_dir": str(runs / name), "task": task,
        "data": {"train": path, "text_column": text_column or None, "feature_columns": feature_columns or None,
                 "label_column": label_column or "label", "date_column": date_column or None},
        "model": {"backbone": backbone, "kind": kind, "max_length": int(max_length)},
        "strategy": {"name": strategy},
        "train": {"epochs": int(epochs), "max_steps": int(max_steps) or None, "batch_size": int(batch_size),
                  "lr": float(lr)},
    }
    if base and base.strip():
        below = load_config(base.strip()).model_dump(mode="json")  # paths resolved as the CLI resolves them
        for section, key in (("model", "kind"), ("strategy", "name")):
            if below[section].get(key) != raw[section][key]:  # another kind or strategy: its own keys only
                below[section] = {}
        raw = _merged(below, raw)
    return validate_config(raw, source="board")


def _merged(below: dict[str, Any], above: dict[str, Any]) -> dict[str, Any]:
    """``above`` over ``below``, section by section (a section's other keys stay)."""
    out = dict(below)
    for key, value in above.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def report_markdown(report: dict[str, Any]) -> str:
    """The data check as Markdown: rows, balance or target, lengths, cleaning, personal data."""
    lines = ["| split | rows | text length |", "|---|---:|---|"]
    for split, rows in report["rows"].items():
        length = report.get("text_length", {}).get(split, {})
        lines.append(f"| {split} | {rows} | mean {length.get('mean', '')} {length.get('unit', '')}, "
                     f"p95 {length.get('p95', '')} |")
    if report.get("class_balance"):
        splits = list(report["class_balance"])
        lines += ["", "| label | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
        for label in report["class_balance"][splits[0]]:
            lines.append(f"| {label} | " + " | ".join(str(report["class_balance"][s][label]) for s in splits) + " |")
    conflicts = report.get("conflicts") or {}
    privacy = report.get("privacy") or {}
    masked = ", ".join(f"{k} {v}" for k, v in (privacy.get("counts") or {}).items()) or "none found"
    lines += ["", f"- duplicates removed: {report.get('duplicates_removed', 0)}",
              f"- conflicting labels: {conflicts.get('count', 0)} texts"
              + (" (dropped)" if conflicts.get("dropped") else ""),
              f"- train/eval overlap removed: {report.get('overlap_removed', {})}",
              f"- split: {report.get('split', {}).get('method')} {report.get('split', {}).get('note') or ''}",
              f"- personal data masked: {masked}" if privacy.get("masked") else "- personal data: not masked"]
    return "\n".join(lines)
