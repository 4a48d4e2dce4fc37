"""The config of continued pretraining (``fintune pretrain``): a backbone, an unlabeled
corpus, the objective, and the same ``train`` section as fine-tuning.

A YAML file of its own, not a section of the run config: pretraining has no labels, task,
decision or deployment, and its output is a backbone that run configs then name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fintune.config.sections import CleanConfig, PrivacyConfig, Strict, TrainConfig

CorpusFormat = Literal["auto", "text", "csv", "jsonl", "parquet"]


class CorpusSource(Strict):
    """One file or folder of the corpus. Folders are read for ``.txt`` files (recursively);
    a text file is split into paragraphs at blank lines; tables give one text per row."""

    path: str
    format: CorpusFormat = "auto"
    text_column: str | None = Field(None, description="tables: the column with the text; default: corpus.text_column")


def _sources(value: Any) -> Any:
    # A bare path is a source with the defaults: `sources: [notes/, filings.parquet]`.
    if isinstance(value, (str, dict)):
        value = [value]
    return [{"path": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


class CorpusConfig(Strict):
    """The unlabeled text: read as a stream, cleaned and masked like training data,
    deduplicated, with the texts of evaluation files removed (the leakage guard)."""

    sources: list[CorpusSource] = Field(min_length=1)
    text_column: str = "text"
    encoding: str = "utf-8"
    clean: CleanConfig = CleanConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    exclude: list[CorpusSource] = Field(default_factory=list, description="evaluation files whose texts are "
                                        "removed from the corpus (exact and normalized matches)")
    deduplicate: bool = True
    min_chars: int = Field(20, ge=1, description="shorter texts are dropped (headers, page numbers)")
    validation_fraction: float = Field(0.02, ge=0, lt=0.5, description="texts held out (by a hash of the "
                                       "text) for the loss before and after")
    max_validation_blocks: int = Field(512, ge=1, description="cap on held-out blocks, so evaluation stays quick")

    @field_validator("sources", "exclude", mode="before")
    @classmethod
    def _coerce_sources(cls, value: Any) -> Any:
        return _sources(value)


class MaskingConfig(Strict):
    """Masked-language modeling (encoders): the share of words masked, and how."""

    probability: float = Field(0.15, gt=0, lt=1)
    whole_word: bool = Field(True, description="mask every piece of a chosen word, not single pieces")
    replace_mask: float = Field(0.8, ge=0, le=1, description="of the chosen tokens: share replaced by the mask token")
    replace_random: float = Field(0.1, ge=0, le=1, description="share replaced by a random token; the rest are kept")

    @model_validator(mode="after")
    def _shares(self) -> MaskingConfig:
        if self.replace_mask + self.replace_random > 1:
            raise ValueError("masking.replace_mask + masking.replace_random must not exceed 1")
        return self


def _pretrain_train() -> TrainConfig:
    # One pass over a corpus is the usual budget; the held-out loss is tracked, the last weights kept.
    return TrainConfig(epochs=1, lr=5e-5, early_stopping=None, checkpoint_every=500)


class PretrainConfig(Strict):
    """The whole pretraining run: one YAML file."""

    output_dir: str = "runs/pretrain"
    seed: int = 42
    backbone: str = "minilm"
    trust_remote_code: bool = False
    objective: Literal["auto", "mlm", "causal"] = Field("auto", description="auto: causal for decoder LMs, "
                                                        "masked-language modeling otherwise")
    max_length: int = Field(128, ge=8, le=8192, description="tokens per packed block")
    corpus: CorpusConfig
    masking: MaskingConfig = MaskingConfig()
    train: TrainConfig = Field(default_factory=_pretrain_train)

    @model_validator(mode="after")
    def _loop_settings(self) -> PretrainConfig:
        if self.train.privacy.dp is not None:
            raise ValueError("train.privacy.dp: DP-SGD is not offered for pretraining; mask the corpus instead "
                             "(corpus.privacy)")
        if self.train.oversample or self.train.class_weights:
            raise ValueError("train.oversample and train.class_weights need labels; pretraining has none")
        es = self.train.early_stopping
        if es is not None and es.metric not in (None, "loss", "perplexity"):
            raise ValueError(f"train.early_stopping.metric '{es.metric}': pretraining tracks 'loss' or 'perplexity'")
        return self
