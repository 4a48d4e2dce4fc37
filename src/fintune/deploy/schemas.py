"""The server's request and response bodies (OpenAPI documents them at /docs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _utf8(text: str) -> str:
    # JSON escapes can spell lone surrogates ("\\ud800"), which are not text: a 422, not a 500.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not "
                         "valid text") from None
    return text


Text = Annotated[str, AfterValidator(_utf8)]
Scalar = Text | int | float | bool | None


class PredictRequest(BaseModel):
    """Either ``texts`` or ``rows`` (objects keyed by the training data's column names)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[Text] | None = Field(None, examples=[["$AAPL beats on revenue, raises guidance"]])
    rows: list[dict[Text, Scalar]] | None = Field(None, examples=[[{"income": 52000, "purpose": "car"}]])

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.texts is None) == (self.rows is None):
            raise ValueError("send exactly one of 'texts' (a list of strings) or 'rows' (a list of objects)")
        return self


class ExplainRequest(BaseModel):
    """One ``text`` or one ``row``."""

    model_config = ConfigDict(extra="forbid")
    text: Text | None = None
    row: dict[Text, Scalar] | None = None

    @model_validator(mode="after")
    def _one_input(self) -> ExplainRequest:
        if (self.text is None) == (self.row is None):
            raise ValueError("send exactly one of 'text' or 'row'")
        return self


class Prediction(BaseModel):
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None  # regression
    labels: list[str] | None = Field(None, description="multi_label: every label at or above its threshold "
                                     "(probabilities has each label's)")
    truncated: bool | None = Field(None, description="the input is longer than the model reads (model.max_length "
                                   "tokens) and was scored on its beginning only")


class PredictResponse(BaseModel):
    request_id: str
    model: str
    predictions: list[Prediction]


class Attribution(BaseModel):
    part: str
    score: float


class WindowShare(BaseModel):
    window: int
    start: int
    weight: float
    drop: float


class ExplainResponse(BaseModel):
    label: str
    probability: float
    method: str
    attributions: list[Attribution]
    windows: list[WindowShare] = Field(default_factory=list, description="long documents: each window's "
                                       "pooling weight and the drop in probability without it")


class ErrorResponse(BaseModel):
    error: str
    limit: str | None = None
    allowed: int | None = None
    got: int | None = None
