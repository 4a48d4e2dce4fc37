"""Robustness: does the prediction survive changes that should not matter, and move with
changes that should?

Each perturbation makes a copy of the texts it applies to: typos (nlpaug's keyboard
model), casing, extra whitespace and punctuation, a swapped ticker, a swapped company name
and a changed number must leave the label alone; a negation should change it. The suite
reports, per perturbation, how many texts it applied to, accuracy on the original and the
perturbed copy, and the share of predictions that flipped. For feature models a small
relative noise on the numeric columns plays the part of the typos.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fintune.data import Examples
from fintune.data.features import to_numbers
from fintune.errors import needs

TICKERS = ["AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "BAC", "XOM", "WMT", "KO",
           "PFE", "INTC", "NFLX", "DIS", "BA", "GS", "C", "T"]
COMPANIES = ["Apple", "Microsoft", "Amazon", "Google", "Alphabet", "Meta", "Nvidia", "Tesla", "JPMorgan",
             "Goldman Sachs", "Bank of America", "Citigroup", "Exxon", "Walmart", "Coca-Cola", "Pfizer",
             "Intel", "Netflix", "Disney", "Boeing", "Nokia", "Siemens", "HSBC", "Barclays", "Unilever"]
_TICKER = re.compile(r"\$[A-Za-z]{1,6}\b")
_COMPANY = re.compile(r"\b(" + "|".join(re.escape(c) for c in sorted(COMPANIES, key=len, reverse=True)) + r")\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?!\w)")  # 5, 12.5 in "up 5%", not the 3 of "Q3"
_AUX = re.compile(r"\b(is|are|was|were|will|has|have|had|can|could|should|would|does|do|did)\b", re.IGNORECASE)


@dataclass
class Perturbation:
    """A change to a text; ``should_change`` says whether the label ought to move."""

    name: str
    should_change: bool
    apply: Callable[[str, random.Random], str | None]  # None: does not apply to this text


@functools.cache
def _keyboard() -> Any:
    # Built once: the augmenter loads its keyboard model on construction.
    with needs("trust", "robustness checks (typo noise)"):
        import nlpaug.augmenter.char as nac

    return nac.KeyboardAug(aug_char_p=0.1, aug_word_p=0.15, include_special_char=False, include_numeric=False)


def _typos(text: str, rng: random.Random) -> str | None:
    # nlpaug draws from the global generators; seed them from ours so runs repeat.
    random.seed(rng.random())
    np.random.seed(rng.randrange(2**32))
    out = _keyboard().augment(text)
    out = out[0] if isinstance(out, list) else out
    return out if out and out != text else None


def _swap(pattern: re.Pattern, choices: list[str], prefix: str = "") -> Callable[[str, random.Random], str | None]:
    def apply(text: str, rng: random.Random) -> str | None:
        found = pattern.findall(text)
        if not found:
            return None
        mapping = {}
        for item in dict.fromkeys(found):
            bare = item.lstrip("$")
            mapping[item] = prefix + rng.choice([c for c in choices if c.lower() != bare.lower()])
        return pattern.sub(lambda m: mapping[m.group(0)], text)
    return apply


def _numbers(text: str, rng: random.Random) -> str | None:
    if not _NUMBER.search(text):
        return None

    def change(m: re.Match) -> str:
        value = float(m.group(1))
        new = value * rng.choice([0.8, 0.9, 1.1, 1.25]) if value else 1.0
        return f"{new:.{len(m.group(1).split('.')[1])}f}" if "." in m.group(1) else str(max(1, round(new)))
    return _NUMBER.sub(change, text)


def _negate(text: str, rng: random.Random) -> str | None:
    m = _AUX.search(text)
    if not m:
        return None
    return text[:m.end()] + " not" + text[m.end():]


# Chinese: 不 before a modal or copula (是 -> 不是, 会 -> 不会), 有 -> 没有; 涨/跌 swapped would
# change the meaning too, but as a different fact rather than its negation.
_AUX_ZH = re.compile(r"(是|会|能|将|要|可以|应该|有)")


def _negate_zh(text: str, rng: random.Random) -> str | None:
    m = _AUX_ZH.search(text)
    if not m:
        return None
    return text[:m.start()] + ("没" if m.group(1) == "有" else "不") + text[m.start():]


PERTURBATIONS = [
    Perturbation("typos", False, _typos),
    Perturbation("lowercase", False, lambda t, r: t.lower() if t.lower() != t else None),
    Perturbation("uppercase", False, lambda t, r: t.upper() if t.upper() != t else None),
    Perturbation("whitespace_punctuation", False, lambda t, r: "  " + t.replace(" ", "  ") + " !!"),
    Perturbation("ticker_swap", False, _swap(_TICKER, TICKERS, prefix="$")),
    Perturbation("company_swap", False, _swap(_COMPANY, COMPANIES)),
    Perturbation("number_change", False, _numbers),
    Perturbation("negation", True, _negate),
    Perturbation("negation_zh", True, _negate_zh),
]


def robustness_suite(model: Any, examples: Examples, seed: int = 0, batch_size: int = 64) -> dict[str, Any]:
    """Accuracy and flip rate under each perturbation, for a classification model.

    Text models get the text perturbations; feature models (fusion, mlp, gbm) also get
    ``numeric_noise_5pct``, each number scaled by a random factor in [0.95, 1.05].
    """
    assert examples.labels is not None
    base = model.outputs(examples, batch_size)
    base_pred = np.asarray(model.labels_ids(base))
    rows: dict[str, Any] = {}
    uses_text = model.tokenizer is not None
    for pert in PERTURBATIONS if uses_text else []:
        rng = random.Random(seed)
        changed = [(i, pert.apply(t, rng)) for i, t in enumerate(examples.texts)]
        changed = [(i, t) for i, t in changed if t is not None]
        if not changed:
            rows[pert.name] = {"n": 0, "should_change": pert.should_change}
            continue
        index = np.array([i for i, _ in changed])
        copy = Examples([t for _, t in changed], examples.labels[index], None, examples.source,
                        None if examples.features is None else examples.features.iloc[index],
                        parts={"pairs": None if examples.pairs is None else [examples.pairs[i] for i in index]})
        rows[pert.name] = _row(model, copy, base_pred[index], examples.labels[index], pert.should_change,
                               batch_size)
    if examples.features is not None and model.features is not None and model.features.numeric:
        rng_np = np.random.default_rng(seed)
        noisy = examples.features.copy()
        for col in model.features.numeric:
            values = to_numbers(noisy[col])
            noisy[col] = values * rng_np.uniform(0.95, 1.05, len(values))
        copy = Examples(examples.texts, examples.labels, None, examples.source, noisy, parts={"pairs": examples.pairs})
        rows["numeric_noise_5pct"] = _row(model, copy, base_pred, examples.labels, False, batch_size)
    return {"accuracy": float(np.mean(base_pred == examples.labels)), "perturbations": rows,
            "classes_predicted": int(len(np.unique(base_pred))), "warnings": robustness_warnings(base_pred, rows)}


# A perturbation meant to change the answer (negation) that flips fewer rows than this leaves
# the model insensitive to what it should read.
MIN_SHOULD_FLIP = 0.02


def robustness_warnings(predicted: np.ndarray, rows: dict[str, Any]) -> list[str]:
    """What makes the flip rates mislead: a model that answers one class never flips, so "0.0%
    flipped" would read as robust; a should-change perturbation that flips nothing."""
    out = []
    if len(predicted) and len(np.unique(predicted)) == 1:
        out.append("every prediction on this split is one class: a constant model never flips, so the flip rates "
                   "measure nothing; the model has not learned the task")
    for name, row in rows.items():
        if row.get("should_change") and row.get("n") and row.get("flip_rate", 1.0) < MIN_SHOULD_FLIP:
            out.append(f"'{name}' should change predictions and flipped {row['flip_rate']:.1%} of {row['n']} rows: "
                       "the model does not react to it")
    return out


def _row(model: Any, copy: Examples, before: np.ndarray, labels: np.ndarray, should_change: bool,
         batch_size: int) -> dict[str, Any]:
    after = np.asarray(model.labels_ids(model.outputs(copy, batch_size)))
    return {"n": int(len(labels)), "should_change": should_change,
            "accuracy_original": float(np.mean(before == labels)),
            "accuracy_perturbed": float(np.mean(after == labels)),
            "flip_rate": float(np.mean(after != before))}


def robustness_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The suite's result as a table, one row per perturbation."""
    return pd.DataFrame([{"perturbation": k, **v} for k, v in report["perturbations"].items()])
