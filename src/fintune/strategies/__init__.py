"""Tuning strategies, one file each, registered by name."""

from fintune.strategies import freeze, full, gradual, lora, prompt, ptuning, qlora  # noqa: F401  (import registers them)
from fintune.strategies.base import (
    STRATEGIES,
    Strategy,
    StrategyConfig,
    build_strategy,
    count_parameters,
    register,
    strategy_config,
)

__all__ = [
    "STRATEGIES", "Strategy", "StrategyConfig", "build_strategy", "count_parameters",
    "register", "strategy_config",
]
