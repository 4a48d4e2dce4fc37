"""What the benchmark scripts share: one process per row, results merged into one JSON file."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_rows(script: str, rows: list[str], epochs: int, result: Path,
             extra: Callable[[dict], dict] = lambda row: {}, extra_args: list[str] | None = None) -> dict:
    """Run ``script --child ROW`` for each row in its own process; keep earlier rows' results.

    The file is rewritten after every row, so a crash loses only the row it happened in.
    """
    results = json.loads(result.read_text()) if result.exists() else {}
    for row in rows:
        start = time.time()
        proc = subprocess.run([sys.executable, script, "--child", row, "--epochs", str(epochs), *(extra_args or [])],
                              stdout=subprocess.PIPE, text=True, check=True)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        # A row may report the epochs it really ran (e.g. per-dataset settings).
        results[row] = {"epochs": epochs, **json.loads(line[len("RESULT "):]),
                        "wall_seconds": round(time.time() - start, 1)}
        # Re-read before writing: another run of the script (other rows, started in the
        # background meanwhile) may have added rows since this one started.
        latest = json.loads(result.read_text()) if result.exists() else {}
        results = {**latest, row: results[row]}
        result.parent.mkdir(parents=True, exist_ok=True)
        result.write_text(json.dumps(results, indent=2) + "\n")
    return results


def rows_to_run(doc: str, child: Callable[[str], dict], default: str | None) -> list[str] | None:
    """Parse ``--rows`` and ``--child``; a child process runs its row, emits it and gets None.

    For scripts whose rows carry their own settings (no ``--epochs``).
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", default=default, help="comma-separated rows (default: all)")
    parser.add_argument("--epochs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(child(args.child))
        return None
    return args.rows.split(",") if args.rows else []


def emit(row: dict) -> None:
    """How a child process hands its row to the parent."""
    print("RESULT " + json.dumps(row), flush=True)


def print_table(results: dict, keys: list[str], first: str, width: int = 22) -> None:
    """One line per row, one column per metric (each column at least as wide as its name)."""
    pad = max(14, *(len(str(n)) + 2 for n in [first, *results]))
    widths = [max(width, len(k) + 2) for k in keys]
    print(f"{first:<{pad}}" + "".join(f"{k:>{w}}" for k, w in zip(keys, widths)))
    for name, row in results.items():
        cells = (f"{row.get(k):>{w}.4f}" if isinstance(row.get(k), float) else f"{row.get(k)!s:>{w}}"
                 for k, w in zip(keys, widths))
        print(f"{name:<{pad}}" + "".join(cells))
