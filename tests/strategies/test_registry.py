from __future__ import annotations

import pytest

from fintune.config import validate_config
from fintune.errors import ConfigError
from fintune.strategies import STRATEGIES, strategies_for, strategy_config

# What each registered strategy declares it trains: model kinds, tasks, DP-SGD. The config's
# cross-checks read these declarations; a new strategy needs a row here.
CAPABILITIES = {
    "full": ({"text", "long_text", "probe", "fusion", "mlp", "gbm", "linear", "ensemble", "bow", "causal"},
             {"classification", "regression", "generation", "token_classification", "multi_label", "relation"}, True),
    "freeze": ({"text", "long_text", "fusion"}, {"classification", "regression", "token_classification", "multi_label", "relation"},
               True),
    "gradual": ({"text", "long_text", "fusion"}, {"classification", "regression", "token_classification",
                                                  "multi_label", "relation"}, False),
    "lora": ({"text", "causal"}, {"classification", "regression", "generation", "token_classification", "multi_label", "relation"},
             True),
    "qlora": ({"causal"}, {"classification", "generation", "multi_label", "relation"}, False),
    "prompt": ({"text"}, {"classification", "regression"}, False),
    "ptuning": ({"text"}, {"classification", "regression"}, False),
    "setfit": ({"probe"}, {"classification"}, False),
    "dpo": ({"causal"}, {"generation"}, False),
}


def test_every_registered_strategy_has_a_row() -> None:
    assert set(CAPABILITIES) == set(STRATEGIES)


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_strategy_declares_what_it_supports(name: str) -> None:
    kinds, tasks, dp = CAPABILITIES[name]
    cls = STRATEGIES[name]
    assert (set(cls.kinds), set(cls.tasks), cls.dp) == (kinds, tasks, dp)


def _config(name: str, kind: str, task: str, dp: bool = False) -> dict:
    data: dict = {"train": "x.csv"}
    if task == "token_classification":
        data.update(tokens_column="tokens", label_column="tags")
    elif kind in ("text", "causal", "probe"):
        data["text_column"] = "text"
    else:
        data["feature_columns"] = ["a"]
        if kind == "fusion":
            data["text_column"] = "text"
    if name == "dpo":  # preference pairs: the rejected answer beside the chosen one
        data["rejected_column"] = "rejected"
    raw = {"data": data, "task": task, "model": {"kind": kind}, "strategy": {"name": name}}
    if dp:
        raw["train"] = {"privacy": {"dp": {"epsilon": 8}}}
    return raw


# Combinations whose inputs are valid on their own, so only the strategy decides.
COMBINATIONS = [(k, t) for k in ("text", "fusion", "mlp", "gbm") for t in ("classification", "regression")] + [
    ("text", "token_classification"), ("causal", "classification"), ("causal", "generation"),
    ("probe", "classification")]


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
@pytest.mark.parametrize(("kind", "task"), COMBINATIONS)
def test_config_accepts_exactly_what_the_strategy_declares(name: str, kind: str, task: str) -> None:
    kinds, tasks, _ = CAPABILITIES[name]
    if kind in kinds and task in tasks:
        assert validate_config(_config(name, kind, task)).strategy.name == name
        assert name in strategies_for(kind, task)
    else:
        with pytest.raises(ConfigError, match=f"not '{name}'|is for causal LMs"):
            validate_config(_config(name, kind, task))


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_dp_follows_the_declaration(name: str) -> None:
    if CAPABILITIES[name][2]:
        assert validate_config(_config(name, "text", "classification", dp=True)).train.privacy.dp is not None
    elif "text" in CAPABILITIES[name][0]:
        with pytest.raises(ConfigError, match="DP-SGD.*strategy full, freeze, lora"):
            validate_config(_config(name, "text", "classification", dp=True))


def test_unknown_strategy_suggests_nearest() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'ful'.*did you mean 'full'"):
        strategy_config({"name": "ful"})


def test_strategy_options_are_validated() -> None:
    with pytest.raises(Exception, match="trainable_layers"):
        strategy_config({"name": "freeze", "trainable_layers": -1})
    assert strategy_config("freeze").trainable_layers == 0
