"""``model``: one typed config per model kind, chosen by ``model.kind`` (a discriminated union).

Every kind shares the backbone, the length it reads and the layers it keeps; each adds its own
settings. A setting of another kind is an error that names the kind that reads it (a default
value is dropped instead, so a config written before the kinds had their own sections loads).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, model_validator

from fintune.config.kind_sections import BowConfig, EnsembleConfig, GBMConfig, LinearConfig, LongTextConfig
from fintune.config.strict import Strict
from fintune.kinds import kind_names

KIND_HELP = ("text: the encoder reads the text; long_text: it reads every window of a long document and pools "
             "them (model.long_text); probe: a linear layer on the frozen encoder's sentence vector (computed "
             "once; cheap, and what DP-SGD trains best); fusion: the encoder's sentence vector joined with the "
             "row's features; mlp / gbm / linear: the features alone (baselines); ensemble: several of those, "
             "weighted on validation; bow: TF-IDF words with a linear model; causal: a causal LM answers an "
             "instruction prompt, the label words scored as answers")


class ModelBase(Strict):
    """What every kind has: the backbone (a registry name such as ``minilm``, a Hugging Face id,
    or a local path), the tokens it reads and the layers it keeps."""

    backbone: str = "minilm"
    max_length: int = Field(128, ge=8)
    trust_remote_code: bool = False
    dropout: float | None = Field(None, ge=0, lt=1)
    num_layers: int | None = Field(None, ge=1, description="keep only the first N transformer layers")
    kind: str = Field("text", description=KIND_HELP)

    @model_validator(mode="before")
    @classmethod
    def _settings_of_other_kinds(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        kind, kept = raw.get("kind", "text"), {}
        for key, value in raw.items():
            readers = readers_of(key)
            if key in cls.model_fields or not readers:
                kept[key] = value  # its own setting, or one no kind has (the unknown-key error names it)
            elif not _is_default(KIND_MODELS[readers[0]], key, value):
                raise ValueError(f"model.{key} is a setting of model.kind {' or '.join(readers)}, and this "
                                 f"model.kind is {kind}: remove model.{key}, or change model.kind")
        return kept


class TaggingSettings(BaseModel):
    """The text kind's token-classification settings."""

    crf: bool = Field(False, description="token_classification: a CRF layer over the tag scores, trained "
                      "jointly; decoding then keeps to valid tag sequences")
    case_features: bool = Field(False, description="token_classification: add an embedding of each word's "
                                "shape (Title, UPPER, digits...) to its tokens; for uncased encoders such as MiniLM")
    lstm_hidden: int | None = Field(None, ge=1, description="token_classification: a BiLSTM of this many units "
                                    "per direction between the encoder and the tag scores (BERT-BiLSTM-CRF)")
    feature_crf: bool = Field(False, description="token_classification: also train a feature CRF (CRFsuite: the "
                              "word, its case, shape and affixes, and its neighbours') and predict from the mean of "
                              "its tag distribution and the encoder's, weighted as validation F1 prefers")


class HeadSettings(BaseModel):
    """The head over feature columns (fusion, mlp)."""

    head_hidden: int = Field(256, ge=1, description="width of the hidden layer of the head")
    numeric_bins: int = Field(8, ge=0, description="quantile bins of the piecewise-linear encoding of each "
                              "numeric feature; 0 for standardized values alone")


class TextModel(TaggingSettings, ModelBase):
    """``model.kind: text`` (the default): a pretrained encoder fine-tuned on the text."""

    kind: Literal["text"] = Field("text", description=KIND_HELP)


class LongTextModel(ModelBase):
    """``model.kind: long_text``: an encoder over overlapping windows of long documents."""

    kind: Literal["long_text"]
    long_text: LongTextConfig = LongTextConfig()


class ProbeModel(ModelBase):
    """``model.kind: probe``: a linear probe on a frozen encoder's sentence vectors."""

    kind: Literal["probe"]


class FusionModel(HeadSettings, ModelBase):
    """``model.kind: fusion``: the encoder's sentence vector joined with the feature columns."""

    kind: Literal["fusion"]
    text_dim: int | None = Field(32, ge=1, description="the sentence vector is projected to this many "
                                 "dimensions before it joins the features; null keeps all")


class MLPModel(HeadSettings, ModelBase):
    """``model.kind: mlp``: a multilayer perceptron on the feature columns."""

    kind: Literal["mlp"]


class GBMModelConfig(ModelBase):
    """``model.kind: gbm``: LightGBM on the feature columns."""

    kind: Literal["gbm"]
    gbm: GBMConfig = GBMConfig()


class LinearModelConfig(ModelBase):
    """``model.kind: linear``: logistic or ridge regression on the feature columns."""

    kind: Literal["linear"]
    linear: LinearConfig = LinearConfig()


class BowModelConfig(ModelBase):
    """``model.kind: bow``: TF-IDF words and word pairs with logistic or ridge regression."""

    kind: Literal["bow"]
    bow: BowConfig = BowConfig()
    linear: LinearConfig = LinearConfig()


class EnsembleModelConfig(HeadSettings, ModelBase):
    """``model.kind: ensemble``: member kinds weighted on validation; its settings reach the members
    that read them (LightGBM's, the linear model's, the head's)."""

    kind: Literal["ensemble"]
    text_dim: int | None = Field(32, ge=1, description="fusion members: the sentence vector's projection")
    ensemble: EnsembleConfig = EnsembleConfig()
    gbm: GBMConfig = GBMConfig()
    linear: LinearConfig = LinearConfig()


class CausalModel(ModelBase):
    """``model.kind: causal``: a causal LM reads a prompt (label words, a classification head, or
    generated answers)."""

    kind: Literal["causal"]
    prompt: str | None = Field(None, description="the prompt, with {text} and optionally {choices} (the label "
                               "words) or, for generation, {instruction}; default: DEFAULT_PROMPT of "
                               "fintune.models.causal or fintune.models.generation")
    label_words: dict[str, str] | None = Field(None, description="label name -> answer word (default: the "
                                               "name in lower case)")
    max_new_tokens: int = Field(32, ge=1, description="generation: most tokens generated per answer")
    head: Literal["label_words", "classifier"] = Field(
        "label_words", description="task classification: label_words scores each label's word as the answer "
        "to the prompt; classifier puts a linear head on the last real token's hidden state "
        "(AutoModelForSequenceClassification), trained like an encoder's")
    chat_template: str = Field(
        "auto", description="auto wraps prompts in the tokenizer's chat template when it has one (instruct "
        "models), none keeps the raw prompt (base models), or the path of a Jinja file to use instead")
    system_prompt: str | None = Field(None, description="with a chat template: the system message of every "
                                      "conversation (default: the template's own, if any)")


KIND_MODELS: dict[str, type[ModelBase]] = {
    "text": TextModel, "long_text": LongTextModel, "probe": ProbeModel, "fusion": FusionModel, "mlp": MLPModel,
    "gbm": GBMModelConfig, "linear": LinearModelConfig, "ensemble": EnsembleModelConfig, "bow": BowModelConfig,
    "causal": CausalModel,
}
SHARED = frozenset(ModelBase.model_fields)


def _tag(value: Any) -> str | None:
    return value.get("kind", "text") if isinstance(value, dict) else getattr(value, "kind", None)


ModelConfig = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in KIND_MODELS.items())],  # type: ignore[valid-type]
    Discriminator(_tag, custom_error_type="unknown_kind",
                  custom_error_message=f"model.kind must be one of {', '.join(kind_names())}"),
]
"""The ``model`` section: the config class of its ``kind``."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModelConfig)


def model_config(**values: Any) -> ModelBase:
    """The ``model`` section from keyword values (``kind`` picks the class; default text)."""
    return _ADAPTER.validate_python(values)


def readers_of(setting: str) -> tuple[str, ...]:
    """The kinds whose config has ``model.<setting>``; empty for one every kind shares (or none has)."""
    if setting in SHARED:
        return ()
    return tuple(name for name, cls in KIND_MODELS.items() if setting in cls.model_fields)


def as_kind(model: ModelBase, kind: str) -> ModelBase:
    """``model``'s settings as a config of ``kind``: the shared ones and those ``kind`` reads (an
    ensemble's member)."""
    fields = KIND_MODELS[kind].model_fields
    raw = {k: v for k, v in model.model_dump(mode="json").items() if k in fields}
    return model_config(**{**raw, "kind": kind})


def _is_default(cls: type[ModelBase], key: str, value: Any) -> bool:
    default = cls.model_fields[key].get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return isinstance(value, (dict, BaseModel)) and type(default).model_validate(
            value.model_dump() if isinstance(value, BaseModel) else value) == default
    return value == default
