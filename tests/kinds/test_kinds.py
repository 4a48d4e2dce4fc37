"""The kind declarations are the one list of kinds: the config, the ensemble's members, the
strategies and the recipes agree with them. A kind declared without a row here fails."""

from __future__ import annotations

import typing

import pytest

from fintune.config.sections import MemberKind, ModelConfig
from fintune.kinds import KINDS, kind_of, member_kinds
from fintune.recipes.base import RECIPES
from fintune.strategies import STRATEGIES
from fintune.tasks import TASKS

# Each kind: the tasks it is declared for (a second spelling on purpose: a change is deliberate).
ROWS = {
    "text": {"classification", "regression", "token_classification"},
    "long_text": {"classification", "regression"},
    "probe": {"classification", "regression"},
    "fusion": {"classification", "regression"},
    "mlp": {"classification", "regression"},
    "gbm": {"classification", "regression"},
    "linear": {"classification", "regression"},
    "ensemble": {"classification", "regression"},
    "causal": {"classification", "generation"},
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
    assert typing.get_args(ModelConfig.model_fields["kind"].annotation) == tuple(KINDS)
    assert typing.get_args(MemberKind) == member_kinds()
    with pytest.raises(ValueError, match="expected one of text, long_text"):
        kind_of("texts")
