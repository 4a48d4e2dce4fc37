"""Several processes (``accelerate launch``, ``torchrun``, ``fintune train --nproc N``) through
Hugging Face Accelerate, as DDP: every process holds the whole model.

Sharded engines (FSDP, DeepSpeed ZeRO) are refused: the loop evaluates, checkpoints and
saves the unwrapped model and a plain optimizer state, which sharding splits across
processes, and no GPU has been available to verify a sharded path.

Every process draws the same global batches (same seed) and trains on its share of each
(rows ``rank::world``); the loss is scaled so that the averaged gradient is the gradient of
the whole global batch, as in one process. State (step, epoch, batch position) counts global
batches, so a run resumes on any number of processes. Only the main process writes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from fintune.errors import ConfigError

SHARDED = ("FSDP", "DEEPSPEED", "MEGATRON_LM")


def world_size() -> int:
    """Processes of this run, from the launcher's environment (1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """The process that writes: the only one, or rank 0 under a multi-process launcher."""
    return int(os.environ.get("RANK", "0")) == 0


def check_engine(engine: str) -> None:
    """Raise a ConfigError for a sharded engine (accelerate's ``distributed_type``)."""
    if engine in SHARDED:
        raise ConfigError(f"the accelerate config asks for {engine}; fintune trains in several processes as "
                          "DDP only (it checkpoints and saves the whole model, which sharding splits). Use an "
                          "accelerate config with distributed_type MULTI_GPU (e.g. configs/accelerate/multi_node.yaml); "
                          "for a model too large for one GPU, strategy qlora loads it in 4 bits")


class Distributed:
    """The process group of one run, and what the loop asks of it."""

    def __init__(self) -> None:
        from accelerate import Accelerator

        # Without a GPU, accelerate forms a CPU (gloo) group only when told it runs on CPUs.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        check_engine(self.accelerator.distributed_type.value)
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.device = self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def prepare(self, model: nn.Module, optimizer: Optimizer) -> tuple[nn.Module, Any]:
        """The model wrapped for synchronized gradients (DDP, FSDP ...) and its optimizer."""
        return self.accelerator.prepare(model, optimizer)

    def share(self, index: np.ndarray) -> tuple[np.ndarray, float]:
        """This process's rows of a global batch, and the weight of their mean loss that makes
        the mean over processes the mean over the global batch. A batch with fewer rows than
        processes leaves some without a row: they run one row at weight 0, so every process
        still joins the gradient exchange."""
        shard = index[self.rank::self.world]
        if len(shard) == 0:
            return index[:1], 0.0
        return shard, len(shard) * self.world / len(index)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def in_sync(self, model: nn.Module) -> bool:
        """True when every process holds bit-identical weights (a checksum per process)."""
        with torch.no_grad():
            total = torch.zeros(2, dtype=torch.float64, device=self.device)
            for p in model.parameters():
                total[0] += p.detach().double().sum()
                total[1] += (p.detach().double() ** 2).sum()
        gathered = self.accelerator.gather(total[None]).cpu()
        return bool((gathered == gathered[0]).all())

    def close(self) -> None:
        """End the process group; call after the model and optimizer are gone (gloo can
        abort at exit otherwise)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
