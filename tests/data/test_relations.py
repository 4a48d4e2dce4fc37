"""Entity markers for relation classification."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fintune.config import DataConfig
from fintune.data.columns import frame_to_texts
from fintune.data.relations import mark_entities
from fintune.scoring.metrics import compute_metrics


@pytest.mark.parametrize(("sentence", "head", "tail", "marked"), [
    ("东方航空AH股临时停牌传将与上航合并", "东方航空", "上航", "<e1>东方航空</e1>AH股临时停牌传将与<e2>上航</e2>合并"),
    ("东方航空AH股临时停牌传将与上航合并", "上航", "东方航空", "<e2>东方航空</e2>AH股临时停牌传将与<e1>上航</e1>合并"),
    # The tail inside the head's mention is taken at its next, free occurrence.
    ("中国银行与银行业协会签约", "中国银行", "银行", "<e1>中国银行</e1>与<e2>银行</e2>业协会签约"),
    # A mention the sentence lacks is put in front, marked.
    ("阿里巴巴入股苏宁", "阿里", "苏宁易购", "<e2>苏宁易购</e2> 阿里巴巴入股苏宁".replace("阿里巴巴", "<e1>阿里</e1>巴巴")),
])
def test_the_two_entities_are_marked(sentence: str, head: str, tail: str, marked: str) -> None:
    assert mark_entities(sentence, head, tail) == marked


def test_frame_to_texts_marks_the_entity_columns_after_cleaning() -> None:
    cfg = DataConfig(train="t.csv", text_column="text", entity_columns=["h", "t"])
    frame = pd.DataFrame({"text": ["Ａｃｍｅ  buys Globex"], "h": ["Acme"], "t": ["Globex"]})
    assert frame_to_texts(frame, cfg, "t.csv") == ["<e1>Acme</e1> buys <e2>Globex</e2>"]


def test_relation_micro_f1_leaves_out_the_no_relation_label() -> None:
    names = ["acquires", "unknown", "sues"]
    y = np.array([0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 0, 1]]  # right, right "unknown", a false "acquires", a missed "sues"
    metrics = compute_metrics("relation", y, probs, names)
    # Real relations: 1 right of 2 predicted (precision 0.5) and of 2 present (recall 0.5).
    assert (metrics["micro_precision"], metrics["micro_recall"], metrics["micro_f1"]) == (0.5, 0.5, 0.5)
    assert metrics["accuracy"] == 0.5
