"""Sequence labeling: named entities in CoNLL or JSONL data, an optional CRF, entity-level scores."""

from fintune.tagging.metrics import entity_scores
from fintune.tagging.schemes import Entity, convert, detect_scheme, spans, words

__all__ = ["Entity", "convert", "detect_scheme", "entity_scores", "spans", "words"]
