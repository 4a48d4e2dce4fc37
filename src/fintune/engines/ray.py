"""Batch prediction on Ray Data: ``map_batches`` with an actor pool, one model load per actor.

``fintune predict RUN --engine ray`` reads the input with Ray Data (Parquet, CSV or JSON
Lines: a file or a folder of parts), scores it with :class:`fintune.deploy.batch.BatchScorer`
(``fintune predict``'s own columns) and writes a folder of part files in input order.
``--address`` joins a running cluster (``ray://...`` or ``auto``); without it a local Ray
starts with ``--workers`` CPUs.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fintune import api
from fintune.console import console
from fintune.deploy.batch import BatchScorer
from fintune.errors import DataError, FintuneError, needs
from fintune.files import cleanup_partials, temporary_path


def predict_dataset(ds: Any, run: str | Path, *, workers: int = 2, batch_size: int = 256,
                    threads: int = 1, cpus_per_worker: float = 1.0, rows_per_block: int = 4096) -> Any:
    """``ds`` (a ``ray.data.Dataset``) with the prediction columns added, by ``workers`` actors
    that each load the model once (``run``: a run folder, or an ONNX export folder) and run
    ``threads`` torch threads. Each actor reserves ``cpus_per_worker`` of Ray's logical CPUs:
    leave the cluster at least one more for the read and write tasks, which otherwise wait
    forever for a CPU the actors hold.

    Blocks are cut to at most ``rows_per_block`` rows first (streaming, order kept): Ray reads
    a file under 128 MiB as one block and a block goes to one actor, so a single Parquet file
    of a million short texts would otherwise keep every actor but one idle."""
    return (ds.repartition(target_num_rows_per_block=rows_per_block)
            .map_batches(BatchScorer, fn_constructor_kwargs={"run": str(run), "threads": threads},
                         batch_format="pandas", batch_size=batch_size, concurrency=workers,
                         num_cpus=cpus_per_worker))


READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".jsonl": "read_json", ".json": "read_json"}


def _parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def _as_predict_writes(suffix: str) -> Callable[[Any, Path], None]:
    """A part in CSV or JSON Lines as ``fintune predict`` writes that format (a tagger's
    entity lists as JSON text in a CSV cell, for one). Rows go through Python objects, not
    ``to_pandas``, which would hand list cells over as numpy arrays."""
    import pandas as pd

    return lambda table, path: api.WRITERS[suffix]()(pd.DataFrame(table.to_pylist(), columns=table.column_names),
                                                     path, True)


# Parquet parts straight from Arrow; the text formats as `fintune predict` writes them.
WRITERS: dict[str, Callable[[Any, Path], None]] = {".parquet": _parquet,
                                                   **{s: _as_predict_writes(s) for s in (".csv", ".jsonl")}}


def predict_file(run: str | Path, input: str | Path, output: str | Path, *, address: str | None = None,
                 workers: int = 2, batch_size: int = 256, cpus_per_worker: float = 1.0,
                 rows_per_block: int = 4096) -> Path:
    """Score ``input`` on Ray and write ``output``: a folder of part files (.parquet, .csv or
    .jsonl by its suffix), rows in input order; an ``output`` that holds files is refused.
    Without ``address`` (and no Ray running) a local Ray starts with ``workers *
    cpus_per_worker + 1`` logical CPUs: the actors, and one for reading and writing."""
    with needs("ray", "the Ray engine"):
        import ray

    source, output = Path(input), Path(output)
    suffix = _suffix(source)
    if suffix not in READERS or output.suffix.lower() not in WRITERS:
        raise FintuneError(f"--engine ray reads {', '.join(READERS)} and writes {', '.join(WRITERS)} "
                           f"(a folder of parts); got {source} -> {output}")
    # Parts beside an earlier run's would mix two runs' rows in one folder: refused, and nothing
    # of the user's is removed. The parts go to a folder beside it, renamed into place when all
    # are written, so a failed run leaves nothing that looks complete.
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise FintuneError(f"output {output} exists and is not an empty folder; fintune writes over nothing: "
                           "remove it or choose another name")
    partial = temporary_path(output)  # this process's own: never a user's folder or a concurrent run's
    cleanup_partials(output.parent)  # what killed runs left (their processes are gone)
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else int(workers * cpus_per_worker) + 1,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    read = getattr(ray.data, READERS[suffix])
    try:
        ds = read(str(source), lines=True) if READERS[suffix] == "read_json" else read(str(source))
        scored = predict_dataset(ds, run, workers=workers, batch_size=batch_size, cpus_per_worker=cpus_per_worker,
                                 rows_per_block=rows_per_block)
        rows = _write_in_order(scored, partial, output.suffix.lower())
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise _user_error(exc, source) from None
    if output.exists():
        output.rmdir()  # empty, checked above
    partial.rename(output)
    console.print(f"{rows:,} predictions written to [bold]{output}[/] (Ray Data, {workers} workers)")
    return output


def _user_error(exc: BaseException, source: Path) -> BaseException:
    """The error to show for a failed Ray job: the FintuneError raised inside an actor (Ray wraps
    it in its own exception types), one line for an input Ray could not read, else ``exc``."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, FintuneError):
            return current
        seen.append(current)
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    text = str(exc).splitlines()
    # Ray Data re-raises an actor's error as UserCodeException with the remote traceback as
    # text only; fintune's own error is its line "fintune.errors.DataError: <message>".
    for line in reversed(text):
        found = re.match(r"\s*fintune\.errors\.(\w+): (.+)", line)
        if found:
            return DataError(found.group(2)) if found.group(1) == "DataError" else FintuneError(found.group(2))
    reading = any(isinstance(e, (OSError, ValueError)) for e in seen) or "Arrow" in type(exc).__name__
    if reading:
        last = next((line for line in reversed(text) if line.strip()), type(exc).__name__)
        return DataError(f"Ray could not read or score it: {last.strip()[:400]}", file=str(source))
    return exc


def _write_in_order(scored: Any, folder: Path, suffix: str) -> int:
    """Write ``scored`` into ``folder`` as ``part-000000{suffix}``, ... in dataset order; the rows.

    The driver writes, block by block as they arrive: Ray's own ``write_parquet`` names its
    files by write task, and which task gets which block is not fixed, so sorting its files
    by name gave the rows out of order (seen on CI). Writing costs far less than scoring, so
    one writer keeps up with many actors; the blocks pass through the driver one at a time,
    so its memory stays bounded."""
    folder.mkdir(parents=True)
    write, rows = WRITERS[suffix], 0
    # With preserve_order set, the executor hands blocks to the iterator in input order.
    for index, table in enumerate(scored.iter_batches(batch_size=None, batch_format="pyarrow")):
        write(table, folder / f"part-{index:06d}{suffix}")
        rows += table.num_rows
    return rows


def _suffix(path: Path) -> str:
    if path.is_dir():
        parts = sorted(p.suffix.lower() for p in path.iterdir() if p.suffix.lower() in READERS)
        return parts[0] if parts else ""
    return path.suffix.lower()


def train(config: str | Path, overrides: list[str] | tuple[str, ...] = (), *, workers: int = 2,
          address: str | None = None, resume: bool = False, overwrite: bool = False, force: bool = False,
          use_gpu: bool = False) -> Path:
    """``fintune train CONFIG --engine ray``: the same loop in ``workers`` Ray Train workers
    (``TorchTrainer``, DDP over gloo on CPUs or NCCL on GPUs). Each worker runs
    :func:`fintune.api.train`; the process group Ray forms is the one the loop uses (through
    Accelerate, as under torchrun), so rank 0 alone writes the run folder, and fintune's own
    checkpoints and ``--resume`` work as with ``--nproc``. Returns the run folder."""
    with needs("ray", "the Ray engine"):
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

    from fintune.config.loading import load_config

    cfg = load_config(config, overrides)  # checked here, before any worker starts
    # Workers may start in another folder: paths are made absolute, overrides included.
    config_path = str(Path(config).resolve())
    fixed = [*overrides, f"output_dir={Path(cfg.output_dir).resolve()}"]
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else workers + 1, include_dashboard=False,
                 log_to_driver=True, configure_logging=False)
    options = {"config": config_path, "overrides": fixed, "resume": resume, "overwrite": overwrite, "force": force}
    trainer = TorchTrainer(_train_worker, train_loop_config=options,
                           scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
                           run_config=RunConfig(name="fintune", storage_path=str(Path(cfg.output_dir).resolve().parent
                                                                               / ".ray_train")))
    trainer.fit()
    console.print(f"trained on Ray Train ({workers} workers): [bold]{cfg.output_dir}[/]")
    return Path(cfg.output_dir)


def _train_worker(options: dict[str, Any]) -> None:
    """One Ray Train worker: fintune's training with the process group Ray formed."""
    api.train(options["config"], options["overrides"], resume=options["resume"], overwrite=options["overwrite"],
              force=options["force"], show_progress=False)
