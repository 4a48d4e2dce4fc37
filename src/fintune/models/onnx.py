"""An exported ONNX model run by onnxruntime: the same batching and outputs as torch.

The graph (written by :mod:`fintune.deploy.export`) takes the token ids and/or the
encoded feature row and returns ``logits`` and ``sentence_vector``; softmax, temperature
and thresholds stay in :class:`~fintune.models.predictor.Predictor`, so both
backends decide the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fintune.errors import needs
from fintune.models.inference import finish, in_batches

ONNX_FILE = "model.onnx"
OUTPUTS = ["logits", "sentence_vector"]


class OnnxModel:
    """An onnxruntime session on the CPU behind the interface of the torch path."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        with needs("onnx", "running an ONNX model"):
            import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def scores(self, encoded: dict[str, Any], batch_size: int, task: str, pad_id: int,
               on_batch: Callable[[int], None] | None = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities or values, and sentence vectors if asked, in input order."""
        def run(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray | None]:
            feeds = {name: batch[name].numpy() for name in self.input_names}
            logits, vectors = self.session.run(OUTPUTS, feeds)
            return finish(logits, task), (vectors if with_vectors else None)

        return in_batches(encoded, batch_size, pad_id, run, on_batch)
