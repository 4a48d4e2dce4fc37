"""The kind declarations are the one list of kinds: the config, the ensemble's members, the
strategies and the recipes agree with them. A kind declared without a row here fails."""

from __future__ import annotations

import typing

import pytest

from fintune.config import KIND_MODELS, model_config, readers_of
from fintune.config.kind_sections import MemberKind
from fintune.config.model_kinds import SHARED
from fintune.kinds import KINDS, kind_of, member_kinds
from fintune.recipes.base import RECIPES
from fintune.strategies import STRATEGIES
from fintune.tasks import TASKS

# Each kind: the tasks it is declared for (a second spelling on purpose: a change is deliberate).
ROWS = {
    "text": {"classification", "regression", "token_classification", "multi_label", "relation"},
    "long_text": {"classification", "regression"},
    "probe": {"classification", "regression"},
    "fusion": {"classification", "regression"},
    "mlp": {"classification", "regression"},
    "gbm": {"classification", "regression"},
    "linear": {"classification", "regression"},
    "ensemble": {"classification", "regression"},
    "bow": {"classification", "regression", "multi_label", "relation"},
    "causal": {"classification", "generation", "multi_label", "relation"},
}


def test_every_kind_has_a_row() -> None:
    assert set(ROWS) == set(KINDS), "add a row to ROWS for each declared kind"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_trains_exactly_its_declared_tasks(name: str) -> None:
    kind = kind_of(name)
    assert kind.tasks == ROWS[name] and kind.tasks <= set(TASKS) and kind.summary
    import fintune.recipes  # noqa: F401  (every recipe registers itself)

    trained = {task for recipe in RECIPES.values() for task in recipe.tasks if name in recipe.kinds}
    # A recipe declares kinds and tasks as two sets; config/rules.py refuses the pairs of its
    # product that a kind does not do (text generation, causal regression).
    assert set(kind.tasks) <= trained, f"no recipe trains {name} for {sorted(set(kind.tasks) - trained)}"
    assert any(name in strategy.kinds for strategy in STRATEGIES.values())


def test_the_config_and_the_ensemble_read_the_declarations() -> None:
    # One typed config per kind, its kind field naming it (the union's tag).
    assert list(KIND_MODELS) == list(KINDS)
    for name, cls in KIND_MODELS.items():
        assert typing.get_args(cls.model_fields["kind"].annotation) == (name,)
        assert model_config(kind=name).kind == name and type(model_config(kind=name)) is cls
    assert typing.get_args(MemberKind) == member_kinds()
    with pytest.raises(ValueError, match="expected one of text, long_text"):
        kind_of("texts")


# A changed value for each kind-specific setting (what a user would write for that kind).
CHANGED = {"crf": True, "case_features": True, "lstm_hidden": 8, "feature_crf": True, "long_text": {"stride": 64},
           "head_hidden": 64, "text_dim": 8, "numeric_bins": 4, "gbm": {"bags": 2}, "linear": {"folds": 3},
           "ensemble": {"rounds": 5}, "bow": {"analyzer": "char"}, "prompt": "{text}", "label_words": {"a": "b"},
           "max_new_tokens": 8,
           "head": "classifier", "chat_template": "none", "system_prompt": "be brief"}


def test_every_kind_setting_has_a_changed_value() -> None:
    assert {s for cls in KIND_MODELS.values() for s in cls.model_fields} - SHARED == set(CHANGED)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_setting_of_another_kind_is_an_error_that_names_it(name: str) -> None:
    for setting, value in CHANGED.items():
        readers = readers_of(setting)
        if name in readers:
            assert getattr(model_config(kind=name, **{setting: value}), setting) is not None
            continue
        with pytest.raises(ValueError, match=f"model.{setting} is a setting of model.kind {' or '.join(readers)}, "
                                             f"and this model.kind is {name}"):
            model_config(kind=name, **{setting: value})
    # Defaults (a dumped config.yaml spells every field) are no error for any kind.
    defaults = {s: KIND_MODELS[readers_of(s)[0]].model_fields[s].get_default(call_default_factory=True)
                for s in CHANGED}
    assert model_config(kind=name, **{s: v.model_dump() if hasattr(v, "model_dump") else v
                                      for s, v in defaults.items()}).kind == name
