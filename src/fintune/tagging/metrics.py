"""Entity-level scores, as seqeval and conlleval compute them: an entity counts as found
only when its type and its exact word span both match."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fintune.tagging.schemes import spans


def _prf(tp: int, predicted: int, gold: int) -> dict[str, float | int]:
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold, "predicted": predicted}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Micro precision, recall and F1 over all entities (``precision``, ``recall``, ``f1``),
    their macro average over types (``macro_f1``), per-type scores (``per_type``), and
    word accuracy."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold and {len(predicted)} predicted sentences")
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    right = words = 0
    for g, p in zip(gold, predicted):
        if len(g) != len(p):
            raise ValueError(f"a sentence of {len(g)} words has {len(p)} predicted tags")
        gs, ps = set(spans(g)), set(spans(p))
        for kind, _, _ in gs:
            n_gold[kind] += 1
        for kind, _, _ in ps:
            n_pred[kind] += 1
        for kind, _, _ in gs & ps:
            tp[kind] += 1
        right += sum(a == b for a, b in zip(g, p))
        words += len(g)
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: _prf(tp[t], n_pred[t], n_gold[t]) for t in types}
    overall = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    with_gold = [per_type[t]["f1"] for t in types if n_gold[t]]
    return {"precision": overall["precision"], "recall": overall["recall"], "f1": overall["f1"],
            "macro_f1": sum(with_gold) / len(with_gold) if with_gold else 0.0,
            "entities": overall["support"], "predicted_entities": overall["predicted"],
            "word_accuracy": right / words if words else 0.0, "per_type": per_type}


def write_tagging_evaluation(out_dir: Path, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                             tokens: Sequence[Sequence[str]], title: str, max_errors: int = 50) -> dict[str, Any]:
    """Scores to ``metrics.json``, a Markdown report with the per-type table and the first
    sentences with errors (``report.md``), and a per-type F1 bar chart (``per_type_f1.png``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = entity_scores(gold, predicted)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    lines = [f"# Entity evaluation: {title}", "",
             f"{metrics['entities']} entities; micro F1 **{metrics['f1']:.4f}** (precision {metrics['precision']:.4f}, "
             f"recall {metrics['recall']:.4f}); macro F1 {metrics['macro_f1']:.4f}; word accuracy "
             f"{metrics['word_accuracy']:.4f}.", "", "| type | precision | recall | F1 | entities | predicted |",
             "|---|---|---|---|---|---|"]
    for kind, s in metrics["per_type"].items():
        lines.append(f"| {kind} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} | "
                     f"{s['predicted']} |")
    errors = [(t, g, p) for t, g, p in zip(tokens, gold, predicted) if set(spans(g)) != set(spans(p))]
    lines += ["", f"## Sentences with errors ({len(errors)}; the first {min(len(errors), max_errors)})", ""]
    for words, g, p in errors[:max_errors]:
        lines.append(f"- {' '.join(words)[:300]}")
        lines.append(f"  - gold: {_entity_list(words, g)}")
        lines.append(f"  - predicted: {_entity_list(words, p)}")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _plot_per_type(metrics, out_dir / "per_type_f1.png", title)
    return metrics


def _entity_list(words: Sequence[str], tags: Sequence[str]) -> str:
    found = [f"{' '.join(words[a:b])} [{kind}]" for kind, a, b in spans(tags)]
    return "; ".join(found) or "(none)"


def _plot_per_type(metrics: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(metrics["per_type"])
    fig, ax = plt.subplots(figsize=(1.2 * len(types) + 2, 3.2))
    for offset, name in ((-0.25, "precision"), (0.0, "recall"), (0.25, "f1")):
        ax.bar([i + offset for i in range(len(types))], [metrics["per_type"][t][name] for t in types],
               width=0.25, label=name)
    ax.set_xticks(range(len(types)), [f"{t}\n({metrics['per_type'][t]['support']})" for t in types])
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}: micro F1 {metrics['f1']:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
