"""The feature CRF beside the neural tagger (model.feature_crf): its features, marginals,
saving, the mixed decoding, and a tagger trained, saved and reloaded with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fintune import api
from fintune.predictors import FintuneModel
from fintune.tagging.feature_crf import FILE, WEIGHTS, FeatureCRF, mix_and_decode
from fintune.tagging.features import word_features
from fintune.tagging.model import new_crf
from tests.tagging.conftest import tagged_sentences

TAGS = ["O", "B-ORG", "I-ORG", "B-LOC"]


def test_word_features_see_case_shape_and_neighbours() -> None:
    feats = word_features(["Filed", "by", "BANK", "of", "America"], 2)
    assert feats["lower"] == "bank" and feats["isupper"] and feats["shape"] == "XXXX"
    assert feats["-1:lower"] == "by" and feats["+2:istitle"] and feats["-2:lower"] == "filed"
    edge = word_features(["Acme"], 0)
    assert edge["-1:pad"] and edge["+2:pad"] and edge["istitle"]


def test_feature_crf_learns_saves_and_reloads(tmp_path) -> None:
    train = tagged_sentences(150)
    crf = FeatureCRF.fit([t for t, _ in train], [g for _, g in train], TAGS + ["I-LOC"])  # I-LOC never seen
    held = [t for t, _ in tagged_sentences(20, seed=3)]
    probs = crf.marginals(held + [[]])
    assert [p.shape for p in probs] == [(len(t), 5) for t in held] + [(0, 5)]
    assert np.allclose(np.concatenate(probs[:-1]).sum(1), 1.0, atol=1e-4)
    assert np.all(np.concatenate(probs[:-1])[:, 4] == 0)  # a tag the CRF never saw gets no probability
    words = ["acme", "bank", "beats", "hooli"]
    assert [TAGS[i] for i in crf.marginals([words])[0].argmax(1)] == ["B-ORG", "I-ORG", "O", "B-LOC"]
    crf.save(tmp_path)
    again = FeatureCRF.load(tmp_path, TAGS + ["I-LOC"])
    assert (tmp_path / FILE).read_bytes()[:4] == b"lCRF"  # CRFsuite's own format, not a pickle
    assert np.allclose(again.marginals([words])[0], crf.marginals([words])[0])


def test_mixing_keeps_to_the_scheme() -> None:
    tags = ["O", "B-ORG", "I-ORG", "E-ORG", "S-ORG"]
    constraints = new_crf(tags, "bioes")
    # The encoder alone would say O, I-ORG: not a valid BIOES sequence.
    neural = [np.array([[0.6, 0.0, 0.4, 0.0, 0.0], [0.3, 0.0, 0.7, 0.0, 0.0]], dtype=np.float32)]
    crf = [np.array([[0.1, 0.8, 0.0, 0.0, 0.1], [0.1, 0.0, 0.1, 0.8, 0.0]], dtype=np.float32)]
    ids, probs = mix_and_decode(neural, crf, 0.0, constraints)
    assert [tags[i] for i in ids[0]] == ["O", "O"]  # the best valid path under the encoder's scores
    ids, probs = mix_and_decode(neural, crf, 0.5, constraints)
    assert [tags[i] for i in ids[0]] == ["B-ORG", "E-ORG"]
    assert probs[0] == pytest.approx([0.4, 0.4])
    assert mix_and_decode([np.zeros((0, 5))], [np.zeros((0, 5))], 0.5, constraints) == ([[]], [[]])


@pytest.mark.parametrize("options", [{"feature_crf": True}, {"feature_crf": True, "crf": True}],
                         ids=["softmax", "crf-layer"])
def test_tagger_with_a_feature_crf_trains_saves_and_reloads(make_ner_config, options: dict) -> None:
    result = api.train(make_ner_config(model=options, train={"epochs": 2}), show_progress=False)
    report = result.metrics["feature_crf"]
    assert report["weight"] in WEIGHTS and set(report["validation_f1_by_weight"]) == {str(w) for w in WEIGHTS}
    assert report["validation_f1"] == max(report["validation_f1_by_weight"].values())
    assert result.metrics["test"]["f1"] > 0.9  # the CRF alone learns these words
    assert (result.model_dir / FILE).exists()
    meta = json.loads((result.model_dir / "fintune.json").read_text())
    assert meta["tagger"]["feature_weight"] == report["weight"]
    sentences = [t for t, _ in tagged_sentences(30, seed=5)]
    model = FintuneModel.load(result.model_dir)
    assert model.tags(sentences) == FintuneModel.load(result.run_dir).tags(sentences)
    found = model.entities(["acme bank beats hooli"])[0]
    assert [(e.type, e.text) for e in found] == [("ORG", "acme bank"), ("LOC", "hooli")]
    assert all(0 < e.score <= 1 for e in found)
