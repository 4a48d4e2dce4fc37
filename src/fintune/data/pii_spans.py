"""The detected spans of personal data and the registry of detectors, one per type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fintune.config import PrivacyConfig


@dataclass(frozen=True)
class Span:
    """One detected value: its type and character offsets."""

    kind: str
    start: int
    end: int


Detector = Callable[[str, PrivacyConfig], Iterable[Span]]
DETECTORS: dict[str, Detector] = {}


def detector(kind: str) -> Callable[[Detector], Detector]:
    """Register the detector of one personal-data type."""
    def register(fn: Detector) -> Detector:
        DETECTORS[kind] = fn
        return fn
    return register
