"""Commands that put a run to work: predict, chat, export, serve, monitor, board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fintune.cli.app import NoProgress, app, user_errors
from fintune.engines import PredictRequest, engine_for
from fintune.errors import needs


@app.command()
@user_errors
def predict(run: Path, input: Annotated[Path, typer.Option("--input", help="CSV/JSONL/Parquet rows")],
            output: Annotated[Path, typer.Option(help="CSV, JSONL or Parquet file to write (--engine ray: a folder of "
                                                      ".parquet, .csv or .jsonl parts)")],
            batch_size: int = 64, no_progress: NoProgress = False,
            engine: Annotated[str, typer.Option(help="local (one process, streamed) or ray (Ray Data actors)")]
            = "local",
            address: Annotated[str | None, typer.Option(help="--engine ray: a running cluster (auto, ray://...)")]
            = None,
            workers: Annotated[int, typer.Option(help="--engine ray: actors, one model load each", min=1)] = 2,
            truncated_column: Annotated[bool, typer.Option(
                "--truncated-column", help="add a column 'truncated': the row is longer than the model reads")]
            = False,
            ) -> None:
    """Add predicted labels and class probabilities to every row of a file (rows longer than
    the model reads are counted in a warning)."""
    engine_for(engine, "predict").predict(PredictRequest(
        run, input, output, batch_size=batch_size, show_progress=not no_progress, truncated_column=truncated_column,
        workers=workers, address=address))


@app.command()
@user_errors
def chat(run: Path,
         system: Annotated[str | None, typer.Option(help="system prompt (default: the run's own)")] = None,
         max_new_tokens: Annotated[int, typer.Option(help="most tokens per answer", min=1)] = 256,
         temperature: Annotated[float, typer.Option(help="0: greedy; above 0: sampled", min=0)] = 0.0,
         top_p: Annotated[float, typer.Option(help="nucleus sampling (with --temperature)", min=0, max=1)] = 1.0,
         seed: Annotated[int | None, typer.Option(help="seed of sampled answers")] = None) -> None:
    """Talk to a generation run in the terminal; answers stream as they are generated."""
    from fintune.cli.chatting import terminal_chat
    from fintune.models.generation import Sampling

    terminal_chat(run, Sampling(max_new_tokens, temperature, top_p, seed), system)


DeployFile = Annotated[Path | None, typer.Option("--config", help="deploy YAML (export, serve, monitor sections)")]
DeployOverrides = Annotated[list[str] | None, typer.Option("--set", "-s", help="e.g. serve.max_batch_size=16")]


@app.command()
@user_errors
def export(run: Path,
           format: Annotated[str, typer.Option("--format", help="hf (Hugging Face folder), onnx, or gguf "
                                                "(llama.cpp / Ollama; generation runs)")] = "hf",
           quantize: Annotated[str | None, typer.Option(help="onnx: int8 (dynamic quantization); gguf: f16 "
                                                        "(default) or q8_0")] = None,
           merge: Annotated[bool, typer.Option(help="merge LoRA adapters into the weights")] = True,
           fold_temperature: Annotated[bool, typer.Option(help="hf: divide the calibration temperature into the "
                                                          "classifier's weights, so transformers.pipeline gives "
                                                          "fintune's probabilities")] = True,
           output: Annotated[Path | None, typer.Option(help="folder (default RUN/merged, RUN/onnx, RUN/onnx-int8)")] = None,
           force: Annotated[bool, typer.Option(help="keep an ONNX export that fails the metric-drop bound")] = False,
           data: Annotated[Path | None, typer.Option(help="labeled file to check the export on (default: the "
                                                    "run's held-out split)")] = None,
           config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Write the run's model for production: a Hugging Face folder, or ONNX checked against torch."""
    from fintune import api
    api.export(run, format=format, quantize=quantize, merge=merge, output=output, force=force, data=data,
               config=config, overrides=set_ or [], fold_temperature=fold_temperature)


@app.command()
@user_errors
def serve(run: Path, onnx: Annotated[bool, typer.Option(help="serve the ONNX export (int8 if there is one)")] = False,
          host: Annotated[str | None, typer.Option(help="default 127.0.0.1 (serve.host)")] = None,
          port: Annotated[int | None, typer.Option(help="default 8000 (serve.port)")] = None,
          config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Serve the run over HTTP: /v1/predict, /v1/explain, /healthz, /readyz, /metrics, /docs."""
    from fintune.deploy import deploy_config
    with needs("serve", "fintune serve"):
        from fintune.deploy.server import serve as run_server

    cfg = deploy_config(run, config, set_ or []).serve
    cfg = cfg.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    run_server(run, cfg, onnx=onnx)


@app.command()
@user_errors
def monitor(run: Path, log: Annotated[Path | None, typer.Option(help="prediction log (default "
                                                                "RUN/serve/predictions.sqlite)")] = None,
            since: Annotated[float | None, typer.Option(help="only predictions after this Unix time")] = None,
            hours: Annotated[float | None, typer.Option(help="only the last N hours")] = None,
            reference: Annotated[Path | None, typer.Option(help="reference file (default: the run's "
                                                           "training split)")] = None,
            output: Annotated[Path | None, typer.Option(help="folder for drift.json and drift.png "
                                                        "(default RUN/monitor)")] = None,
            config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Drift of logged traffic against the training data; exits 1 on alert."""
    import time

    from rich.console import Console

    from fintune.deploy import deploy_config
    from fintune.deploy.monitor import monitor as run_monitor
    from fintune.deploy.monitor import print_verdict

    if hours is not None:
        since = max(since or 0.0, time.time() - 3600 * hours)
    verdict = run_monitor(run, log, deploy_config(run, config, set_ or []).monitor, since=since,
                          reference=reference, output=output)
    print_verdict(verdict, Console())
    if verdict["status"] == "alert":
        raise typer.Exit(1)


@app.command()
@user_errors
def board(runs: Annotated[Path, typer.Option(help="folder of the runs the board lists and writes")] = Path("runs"),
          host: Annotated[str, typer.Option(help="127.0.0.1: this machine only")] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 7860,
          password_env: Annotated[str, typer.Option(help="environment variable holding the board's "
                                                    "password; when it is set, the page asks for it (required "
                                                    "off loopback)")]
          = "FINTUNE_BOARD_PASSWORD",
          allowed_host: Annotated[list[str] | None, typer.Option(
              help="a host name the board may be reached by besides loopback and this machine's names (a "
                   "reverse proxy's); repeatable")] = None) -> None:
    """The web board: data check, training with live curves, runs, try-it, export and serving."""
    import os

    password = os.environ.get(password_env) or None
    with needs("board", "fintune board"):  # gradio loads when the board is built
        from fintune.board import launch

        launch(runs, host, port, password, allowed_hosts=allowed_host or (), password_env=password_env)
