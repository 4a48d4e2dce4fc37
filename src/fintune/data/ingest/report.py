"""`data check` on data.files: how each kind of file was read and which readings to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from fintune.config import DataConfig
from fintune.data.ingest.base import Extraction

SHOWN = 20  # low-confidence files listed in the report, least confident first


def files_report(readings: dict[str, list[Extraction]], cfg: DataConfig) -> dict[str, Any]:
    """Per split: files by kind, mean confidence, the files below ``data.files.min_confidence``
    and the files that could not be read."""
    assert cfg.files is not None
    threshold = cfg.files.min_confidence
    out: dict[str, Any] = {"min_confidence": threshold}
    for split, extractions in readings.items():
        read = [e for e in extractions if e.error is None]
        scored = [e for e in read if e.confidence is not None]
        low = sorted((e for e in scored if e.confidence is not None and e.confidence < threshold),
                     key=lambda e: e.confidence or 0.0)
        kinds = {kind: sum(e.kind == kind for e in read) for kind in sorted({e.kind for e in read})}
        out[split] = {
            "files": len(extractions), "read": len(read), "by_kind": kinds,
            "mean_confidence": round(sum(e.confidence or 0.0 for e in scored) / len(scored), 4) if scored else None,
            "below_min_confidence": len(low),
            "lowest": [{"file": e.file, "confidence": round(e.confidence or 0.0, 4), "text": e.text[:120]}
                       for e in low[:SHOWN]],
            "errors": [{"file": e.file, "error": e.error} for e in extractions if e.error is not None],
            "seconds_reading": round(sum(e.seconds for e in read), 2),
        }
    return out


def print_files_report(report: dict[str, Any], console: Console) -> None:
    """The files section of `data check`, one line per split and the files to look at."""
    threshold = report["min_confidence"]
    for split, part in report.items():
        if not isinstance(part, dict):
            continue
        kinds = ", ".join(f"{n} {kind}" for kind, n in part["by_kind"].items())
        mean = part["mean_confidence"]
        console.print(f"files ({split}): {part['read']} of {part['files']} read ({kinds}); mean confidence "
                      f"{'n/a' if mean is None else f'{mean:.3f}'}; {part['below_min_confidence']} below "
                      f"{threshold:g}", highlight=False)
        for low in part["lowest"][:5]:
            console.print(f"  low confidence {low['confidence']:.3f}: {Path(low['file']).name}: {low['text'][:70]}",
                          markup=False, highlight=False)
        for error in part["errors"][:5]:
            console.print(f"  [red]not read[/]: {Path(error['file']).name}: {error['error']}", highlight=False)
