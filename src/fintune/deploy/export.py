"""``fintune export``: a plain Hugging Face model, or an ONNX graph (fp32 or int8) that is
checked against the torch model on held-out data before it is accepted.

The ONNX graph has dynamic batch and sequence axes and two outputs, ``logits`` and
``sentence_vector`` (what the server logs for drift monitoring). The folder it lands in
holds the tokenizer and fintune's metadata too, so ``FintuneModel.load`` and
``fintune serve`` take it like any model folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fintune.config import ExportConfig
from fintune.console import console
from fintune.data import Examples, load_examples
from fintune.errors import FintuneError, needs
from fintune.files import atomic_folder, replaceable
from fintune.scoring.metrics import compute_metrics, primary_metric
from fintune.predictors import FintuneModel
from fintune.models.metadata import OnnxMeta, RunMeta
from fintune.models.inference import forward_scores
from fintune.models.onnx import ONNX_FILE, OUTPUTS
from fintune.data.batching import collate
from fintune.trust import examples_and_table
from fintune.tasks import task_of

REPORT = "export.json"


@dataclass
class ExportCheck:
    """How the exported model compares with the torch model on the same held-out rows."""

    rows: int
    metric: str
    torch_value: float
    exported_value: float
    drop_points: float  # x100, positive = the exported model is worse
    agreement: float  # share of identical predicted labels (classification)
    max_abs_diff: float  # largest difference of a probability (or regression value)
    bound_points: float
    passed: bool


class _Graph(torch.nn.Module):
    """The traced function: named input tensors in, logits and sentence vectors out."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, vectors = forward_scores(self.model, dict(zip(self.names, tensors, strict=True)), True)
        assert vectors is not None
        return logits, vectors


def _sample_batch(model: FintuneModel, examples: Examples) -> dict[str, torch.Tensor]:
    """Two rows of different lengths, so the traced graph sees padding under the mask."""
    encoded = model.inputs(examples.take(np.arange(min(len(examples), 64))))
    lengths = [len(ids) for ids in encoded.get("input_ids", [[0]] * len(examples))]
    index = np.array([int(np.argmin(lengths)), int(np.argmax(lengths))])
    if index[0] == index[1]:
        index = np.array([0, min(1, len(lengths) - 1)])
    return collate(encoded, index, model.inputs.pad_id)


@contextlib.contextmanager
def _quiet_exporter() -> Any:
    """The dynamo exporter logs each stage and optional torchvision ops; keep the terminal clean."""
    names = ["torch.onnx", "torch.onnx._internal.exporter._registration", "torch._dynamo", "torch.export"]
    levels = [logging.getLogger(n).level for n in names]
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in zip(names, levels, strict=True):
            logging.getLogger(name).setLevel(level)


def write_onnx(model: FintuneModel, folder: Path, examples: Examples, opset: int) -> Path:
    """Trace ``model`` (merged, fp32) to ``folder/model.onnx`` with dynamic batch and sequence axes."""
    if model.onnx_export is not None:  # the class says why it is not traced
        raise FintuneError(model.onnx_export)
    if model.is_adapter:
        raise FintuneError(f"a {model.meta.strategy} adapter cannot be exported to ONNX unmerged; "
                           "drop --no-merge (LoRA merges; prompt-style adapters cannot be exported)")
    sample = _sample_batch(model, examples)
    names = list(sample)
    batch, sequence = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
    # One entry per tensor of the one *tensors argument.
    shapes = tuple({0: batch, 1: sequence} if name != "features" else {0: batch} for name in names)
    graph = _Graph(model.model.float(), names).eval()  # eval: a traced dropout would stay in the graph
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ONNX_FILE
    with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(graph, tuple(sample[n] for n in names), dynamo=True, input_names=names,
                                    output_names=OUTPUTS, dynamic_shapes=(shapes,), opset_version=opset,
                                    verbose=False)
        program.save(str(path))
    return path


def quantize_int8(path: Path) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Gemm (onnxruntime), in place."""
    with needs("onnx", "int8 quantization"):
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = path.with_suffix(".prep.onnx")
    quantized = path.with_suffix(".int8.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(quantized), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
        quantized.replace(path)
    finally:
        prepared.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)
    for extra in path.parent.glob(f"{path.name}.data"):
        extra.unlink()


def copy_companions(model: FintuneModel, folder: Path, meta: RunMeta) -> None:
    """Tokenizer, feature encoder and metadata beside the graph, so the folder loads alone."""
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(folder)
    if model.features is not None:
        model.features.save(folder)
    config = getattr(getattr(model.model, "config", None), "to_json_file", None)
    if config is not None:
        config(str(folder / "config.json"))
    meta.write(folder)


def check_export(reference: FintuneModel, exported: FintuneModel, examples: Examples,
                 bound_points: float, batch_size: int = 64) -> ExportCheck:
    """Predict the same rows with both models and compare outputs and the primary metric."""
    ref = reference.outputs(examples, batch_size)
    out = exported.outputs(examples, batch_size)
    name, mode = primary_metric(reference.task)
    values = [compute_metrics(reference.task, examples.labels, o, reference.label_names,
                              reference.threshold)[name] for o in (ref, out)]
    drop = (values[0] - values[1]) if mode == "max" else (values[1] - values[0])
    # MSE is not a share: its "points" are the change relative to the torch value.
    drop_points = 100 * (drop if mode == "max" else drop / max(abs(values[0]), 1e-12))
    agreement = (float(np.mean(reference.labels_ids(ref) == reference.labels_ids(out)))
                 if task_of(reference.task).scores_classes else float("nan"))
    return ExportCheck(rows=len(examples), metric=name, torch_value=float(values[0]),
                       exported_value=float(values[1]), drop_points=float(drop_points), agreement=agreement,
                       max_abs_diff=float(np.max(np.abs(ref - out))) if len(ref) else 0.0,
                       bound_points=bound_points, passed=bool(drop_points <= bound_points))


def check_examples(run: Path, model: FintuneModel, data: str | Path | None, rows: int | None) -> Examples:
    """Labeled rows to check the export on: ``data``, else the run's held-out split."""
    if data is not None:
        examples = load_examples(str(data), model.data_config, model.task, model.label_names)
    else:
        examples = examples_and_table(run, None, model)[0]
    if rows is not None and rows < len(examples):
        examples = examples.take(np.random.default_rng(0).choice(len(examples), rows, replace=False))
    return examples


def export_onnx(run: Path, output: Path, cfg: ExportConfig, *, quantize: str | None = None,
                force: bool = False, data: str | Path | None = None) -> ExportCheck:
    """Export, optionally quantize, check against torch, and keep the result only if it passes
    (or ``force``). Writes ``export.json`` with the check beside the graph."""
    started = time.perf_counter()
    reference = FintuneModel.load(run)
    if reference.onnx_export is not None:
        raise FintuneError(reference.onnx_export)
    replaceable(output, "fintune.json", "export folder")
    examples = check_examples(run, reference, data, cfg.check_rows)
    # A temporary name of this process's own (atomic_folder): never a user's folder, never one a
    # concurrent export uses, and one a later command recognizes as left by a dead process.
    with atomic_folder(output, "export folder") as partial:
        write_onnx(reference.merged(), partial, examples, cfg.opset)
        if quantize == "int8":
            quantize_int8(partial / ONNX_FILE)
        meta = reference.meta.updated(exported_from=str(run), onnx=OnnxMeta(quantize=quantize, opset=cfg.opset))
        copy_companions(reference, partial, meta)
        check = check_export(reference, FintuneModel.load(partial), examples, cfg.max_metric_drop)
        report = {**asdict(check), "format": "onnx", "quantize": quantize, "forced": force and not check.passed,
                  "size_mb": round((partial / ONNX_FILE).stat().st_size / 2**20, 2),
                  "seconds": round(time.perf_counter() - started, 1)}
        (partial / REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")
        if not check.passed and not force:
            raise FintuneError(
                f"the exported model loses {check.drop_points:.2f} points of {check.metric} on {check.rows} "
                f"held-out rows ({check.torch_value:.4f} -> {check.exported_value:.4f}), more than the bound "
                f"of {check.bound_points} (deploy.export.max_metric_drop); nothing was written. Export "
                "without --quantize, raise the bound, or pass --force to keep it anyway")
    _print_check(check, output, report)
    return check


def _print_check(check: ExportCheck, output: Path, report: dict[str, Any]) -> None:
    agree = "" if math.isnan(check.agreement) else f", {check.agreement:.2%} same labels"  # nan: regression
    console.print(f"{check.metric}: torch {check.torch_value:.4f}, exported {check.exported_value:.4f} "
                  f"(drop {check.drop_points:+.2f} points on {check.rows} rows{agree}); "
                  f"{report['size_mb']} MB")
    console.print(f"exported to [bold]{output}[/]" + (" [red](forced past the bound)[/]" if report["forced"] else ""))


def export_hf(run: Path, output: Path, *, merge: bool = True, fold_temperature: bool = True) -> None:
    """A plain Hugging Face model folder, LoRA adapters merged into the weights.

    With ``fold_temperature`` (and a merged model whose kind allows it) the calibration
    temperature is divided into the classifier's output layer, so ``transformers.pipeline``
    on the folder gives fintune's probabilities. The decision (temperature, threshold) is also
    written into ``config.json`` as ``fintune_*`` fields, where a transformers user sees it.
    """
    model = FintuneModel.load(run)
    model = model.merged() if merge else model
    temperature = model.temperature
    if fold_temperature and temperature is not None:
        folded = model.folded()
        if folded is None or folded.temperature is not None:
            console.print(f"[yellow]note:[/] this model's probabilities are calibrated with temperature "
                          f"{temperature:.3f} inside fintune; a plain transformers pipeline on the folder will "
                          "not apply it (fintune.json and config.json record it)")
        else:
            model = folded
            console.print(f"calibration temperature {temperature:.3f} folded into the classifier's weights: "
                          "transformers.pipeline gives fintune's probabilities")
    if model.meta.label_temperatures is not None:
        console.print("[yellow]note:[/] each label's probability is calibrated with its own temperature inside "
                      "fintune; a plain transformers pipeline on the folder will not apply them (fintune.json and "
                      "config.json's fintune_label_temperatures record them)")
    with atomic_folder(output, "export folder") as tmp:
        model.save(tmp)
        record_decision(tmp, model)
    console.print(f"exported to [bold]{output}[/]")


def record_decision(folder: Path, model: FintuneModel) -> None:
    """``fintune_temperature``, ``fintune_temperature_folded`` and ``fintune_threshold`` in the
    folder's ``config.json`` (when it has one), for readers of the Hugging Face files."""
    path = folder / "config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(fintune_temperature=model.temperature, fintune_temperature_folded=model.meta.folded_temperature,
                  fintune_label_temperatures=model.meta.label_temperatures,
                  fintune_threshold=model.threshold,
                  fintune_positive_label=(model.label_names or [None, None])[1] if model.threshold is not None else None)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

