"""Tuning strategies, one file each, registered by name."""

# Import order is registration order, which error messages list: simplest first.
from fintune.strategies import full, freeze, gradual, lora, qlora, dpo, prompt, ptuning, setfit  # noqa: F401,I001  (registers)
from fintune.strategies.base import (
    STRATEGIES,
    Strategy,
    StrategyConfig,
    build_strategy,
    count_parameters,
    register,
    strategies_for,
    strategy_config,
)

__all__ = [
    "STRATEGIES", "Strategy", "StrategyConfig", "build_strategy", "count_parameters",
    "register", "strategies_for", "strategy_config",
]
