"""Atomic checkpoints: a killed process never leaves a half-written file behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fintune.files import space_checked


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over the target. A full
    disk is one line naming the checkpoint (torch reports it as ``unexpected pos``), the partial
    file is removed and the previous checkpoint stays."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with space_checked(path, "checkpoint", tmp):
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def load(path: Path) -> Any:
    """Load a checkpoint written by :func:`atomic_save` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
