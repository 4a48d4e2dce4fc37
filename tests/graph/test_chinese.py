"""A knowledge graph from Chinese news: entities from a gazetteer (no Chinese NER here), the
relation between each pair from a relation run, Chinese labels drawn with a CJK font."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from fintune import api
from fintune.graph import build, show
from fintune.evaluation.fonts import cjk_family
from fintune.graph.gazetteer import Gazetteer
from fintune.graph.relations import relation_rows
from tests.conftest import write_config

COMPANIES = ["东方航空", "上航", "中国银行", "阿里巴巴", "苏宁", "腾讯"]
VERBS = {"合并": "宣布将与", "持股": "增持了", "unknown": "和"}
ENDINGS = {"合并": "合并", "持股": "的股份", "unknown": "今日股价均上涨"}


def _sentence(rng: random.Random, relation: str) -> tuple[str, str, str]:
    head, tail = rng.sample(COMPANIES, 2)
    return head, tail, f"{head}{VERBS[relation]}{tail}{ENDINGS[relation]}，{rng.choice(['据报道', '消息称', '公告显示'])}"


@pytest.fixture(scope="module")
def relation_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    tmp = tmp_path_factory.mktemp("finre")
    rng = random.Random(0)
    rows = []
    for i in range(240):
        relation = ["合并", "持股", "unknown"][i % 3]
        head, tail, text = _sentence(rng, relation)
        rows.append({"text": text, "head": head, "tail": tail, "label": relation})
    pd.DataFrame(rows).to_csv(tmp / "finre.csv", index=False)
    config = write_config(tmp / "c.yaml", tiny_bert, tmp / "finre.csv", tmp / "run", task="relation",
                          data={"entity_columns": ["head", "tail"]},
                          model={"kind": "bow", "bow": {"analyzer": "char", "ngram_max": 2}})
    run = api.train(config, show_progress=False).run_dir
    assert json.loads((run / "metrics.json").read_text())["test"]["micro_f1"] > 0.9
    return run


def test_the_gazetteer_takes_the_longest_name_and_respects_latin_words() -> None:
    gazetteer = Gazetteer({"中国": "ENT", "中国银行": "ORG", "ICBC": "ORG"})
    found = gazetteer.entities(["中国银行与中国的ICBC合作", "ICBCX不是"])
    assert [(m.type, m.text) for m in found[0]] == [("ORG", "中国银行"), ("ENT", "中国"), ("ORG", "ICBC")]
    assert found[1] == []


def test_each_ordered_pair_of_a_text_is_asked_once() -> None:
    keys, rows = relation_rows(["A与B合作，A再次"], [[_m("A"), _m("B"), _m("A")]], {"a", "b"})
    assert keys == [("a", "b"), ("b", "a")] and rows[0] == {"text": "A与B合作，A再次", "head": "A", "tail": "B"}


def _m(text: str):
    from fintune.graph.gazetteer import Mention

    return Mention("ENT", text)


def test_a_chinese_graph_gets_its_relations_and_draws_its_labels(relation_run: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    corpus = [_sentence(rng, "合并")[2] for _ in range(6)] + [_sentence(rng, "持股")[2] for _ in range(6)]
    pd.DataFrame({"text": corpus}).to_csv(tmp_path / "news.csv", index=False)
    (tmp_path / "names.txt").write_text("\n".join(COMPANIES), encoding="utf-8")
    built = build(None, tmp_path / "news.csv", tmp_path / "graph", gazetteer=tmp_path / "names.txt",
                  relations=relation_run, show_progress=False)
    edges = list(built.graph.edges(data=True))
    assert edges and all("relation" in d for *_, d in edges)
    described = [d["relation"] for *_, d in edges]
    assert any("-[合并]->" in r for r in described) and any("-[持股]->" in r for r in described)
    counts = json.loads(edges[0][2]["relations"])
    assert {"head", "relation", "tail", "texts"} == set(counts[0])
    node = next(iter(built.graph.nodes))
    shown = show(tmp_path / "graph", built.graph.nodes[node]["label"], png=tmp_path / "n.png")
    assert shown.png is not None and shown.png.stat().st_size > 10_000


def test_chinese_labels_use_an_installed_cjk_font(tmp_path: Path) -> None:
    import warnings

    from fintune.graph.show import label_font

    family = cjk_family()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = label_font(["东方航空", "上航"])
    if family is None:  # CI installs Debian's fonts-wqy-microhei; elsewhere say what to install
        assert chosen == "sans-serif" and "fonts-wqy-microhei" in str(caught[0].message)
    else:
        assert chosen == family and not caught
    assert label_font(["Deutsche Bank"]) == "sans-serif"


def test_the_entities_need_one_source(tmp_path: Path) -> None:
    from fintune.errors import FintuneError

    pd.DataFrame({"text": ["东方航空"]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(FintuneError, match="--ner RUN .* or --gazetteer FILE"):
        build(None, tmp_path / "c.csv", tmp_path / "g")
