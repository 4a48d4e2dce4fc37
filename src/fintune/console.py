"""The one console every command prints to: stderr, so stdout stays for data.

Piped into a file (`fintune train cfg.yaml > log 2>&1`), lines are not wrapped at 80
columns, so numbers and paths stay whole on one line and `grep` finds them.
"""

import os
import sys

from rich.console import Console

_PIPED = not sys.stderr.isatty()
console = Console(stderr=True, soft_wrap=_PIPED, width=160 if _PIPED and "COLUMNS" not in os.environ else None)


def duration(seconds: float) -> str:
    """``350.15`` -> ``5:50``; ``3725`` -> ``1:02:05``: times as people read them."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
