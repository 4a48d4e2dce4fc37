"""This machine: one process, or several under torchrun (``--nproc N``, DDP through Accelerate)."""

from __future__ import annotations

import subprocess
import sys

from fintune.engines.base import Engine, PredictRequest, TrainRequest, register_engine


@register_engine
class LocalEngine(Engine):
    """One process on this machine; ``nproc`` above 1 hands the request to torchrun."""

    name = "local"
    summary = "this machine (--nproc N: N processes under torchrun)"
    works = frozenset({"train", "pretrain", "predict"})

    def train(self, request: TrainRequest) -> int:
        if request.nproc > 1:
            return TorchrunEngine().train(request)
        from fintune import api

        run = api.pretrain if request.command == "pretrain" else api.train
        run(request.config, request.overrides, resume=request.resume, overwrite=request.overwrite,
            force=request.force, show_progress=request.show_progress)
        return 0

    def predict(self, request: PredictRequest) -> None:
        from fintune import api

        api.predict(request.run, request.input, request.output, batch_size=request.batch_size,
                    show_progress=request.show_progress, truncated_column=request.truncated_column)


@register_engine
class TorchrunEngine(Engine):
    """``nproc`` processes on this machine under ``torch.distributed.run`` (for several machines,
    ``accelerate launch`` starts ``fintune train`` in each)."""

    name = "torchrun"
    summary = "N processes on this machine under torchrun (DDP; --nproc N)"
    works = frozenset({"train", "pretrain"})
    hint = "it starts training processes; predict runs in one process"

    def train(self, request: TrainRequest) -> int:
        # Each process prints its own errors; the exit code is passed on.
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={request.nproc}", "-m", "fintune", *request.argv()]
        return subprocess.run(command, check=False).returncode
