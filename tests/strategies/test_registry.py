from __future__ import annotations

import pytest

from fintune.errors import ConfigError
from fintune.strategies import strategy_config


def test_unknown_strategy_suggests_nearest() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'ful'.*did you mean 'full'"):
        strategy_config({"name": "ful"})


def test_strategy_options_are_validated() -> None:
    with pytest.raises(Exception, match="trainable_layers"):
        strategy_config({"name": "freeze", "trainable_layers": -1})
    assert strategy_config("freeze").trainable_layers == 0
