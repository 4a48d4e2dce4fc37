"""The whole run (:class:`RunConfig`): the sections, the registered strategy's own config,
and the cross-section rules of :mod:`fintune.config.rules`."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from fintune.config.rules import check_run
from fintune.config.sections import (
    DataConfig, DecisionConfig, DeployConfig, Strict, Task, TrackConfig, TrainConfig, TuneConfig,
)
from fintune.config.model_kinds import ModelConfig, TextModel
from fintune.strategies import StrategyConfig, strategy_config


class RunConfig(Strict):
    """The whole run: one YAML file."""

    output_dir: str = "runs/run"
    task: Task = "classification"
    seed: int = 42
    data: DataConfig
    model: ModelConfig = TextModel()
    strategy: SerializeAsAny[StrategyConfig] = Field(default_factory=lambda: strategy_config("full"))
    train: TrainConfig = TrainConfig()
    decision: DecisionConfig = DecisionConfig()
    tune: TuneConfig | None = None
    deploy: DeployConfig = DeployConfig()
    track: TrackConfig = TrackConfig()

    @field_validator("strategy", mode="before")
    @classmethod
    def _registered_strategy(cls, value: Any) -> StrategyConfig:
        return strategy_config(value)

    @model_validator(mode="after")
    def _sections_agree(self) -> RunConfig:
        check_run(self.task, self.data, self.model, self.strategy.name, self.train, self.decision)
        return self
