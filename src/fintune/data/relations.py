"""Relation inputs: the sentence with its two entities marked, ``<e1>head</e1>`` and
``<e2>tail</e2>`` (the entity markers of Baldini Soares et al., 2019), so any text model reads
which two mentions the question is about."""

from __future__ import annotations

HEAD, TAIL = ("<e1>", "</e1>"), ("<e2>", "</e2>")


def mark_entities(sentence: str, head: str, tail: str) -> str:
    """``sentence`` with the first mention of ``head`` and the first of ``tail`` that does not
    overlap it wrapped in markers. A mention the sentence lacks (an alias, a masked name) is
    put in front, marked, so the pair is never lost."""
    spans: list[tuple[int, int, tuple[str, str]]] = []
    start = sentence.find(head) if head else -1
    if start >= 0:
        spans.append((start, start + len(head), HEAD))
    at = _free(sentence, tail, spans)
    if at >= 0:
        spans.append((at, at + len(tail), TAIL))
    out = sentence
    for begin, end, (left, right) in sorted(spans, reverse=True):  # from the end: offsets stay valid
        out = out[:begin] + left + out[begin:end] + right + out[end:]
    missing = [f"{left}{name}{right}" for name, (left, right) in ((head, HEAD), (tail, TAIL))
               if not any(m == (left, right) for _, _, m in spans)]
    return " ".join(missing + [out]) if missing else out


def _free(sentence: str, mention: str, taken: list[tuple[int, int, tuple[str, str]]]) -> int:
    """The first occurrence of ``mention`` that overlaps no span in ``taken``; -1 if none."""
    if not mention:
        return -1
    at = sentence.find(mention)
    while at >= 0:
        if all(at + len(mention) <= s or at >= e for s, e, _ in taken):
            return at
        at = sentence.find(mention, at + 1)
    return -1
