"""The board's worker processes: stop leaves a resumable checkpoint, resume finishes the run."""

from __future__ import annotations

import time
from pathlib import Path

from fintune.board.jobs import Jobs, curves, progress_line
from fintune.training import loop


def wait_for(condition, seconds: float = 120.0) -> None:
    end = time.time() + seconds
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.2)


def test_stop_checkpoints_and_resume_finishes(make_config, tmp_path: Path) -> None:
    config = make_config("job.yaml", train={"epochs": 40, "checkpoint_every": 0, "early_stopping": None})
    run = tmp_path / "runs" / "job"
    jobs = Jobs(tmp_path / "board")
    jobs.train(config, run, resume=False)
    assert jobs.status(run) == "running"
    wait_for(lambda: len(loop.read_history(run / loop.STEPS)) >= 3)
    assert jobs.stop(run)
    wait_for(lambda: jobs.status(run) != "running")
    assert jobs.status(run) == "stopped (resumable)", jobs.log(run).read_text()
    assert "training stopped at step" in jobs.log(run).read_text()
    stopped_at = len(loop.read_history(run / loop.STEPS))
    assert stopped_at < 40 * 12 and (run / loop.CHECKPOINT).exists()

    jobs.train(config, run, resume=True)
    wait_for(lambda: jobs.status(run) != "running", 300)
    assert jobs.status(run) == "finished", jobs.log(run).read_text()
    steps = [r["step"] for r in loop.read_history(run / loop.STEPS)]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > stopped_at  # no step lost or repeated
    loss, metrics = curves(run)
    assert len(loss) == steps[-1] and set(metrics["metric"]) >= {"loss", "weighted_f1"}
    assert progress_line(run).startswith(f"step {steps[-1]} of {steps[-1]}")
    assert not jobs.stop(run)


def test_serve_starts_and_stops_the_http_server(make_config, tmp_path: Path) -> None:
    import httpx

    from fintune import api
    from tests.board.test_board import free_port

    run = api.train(make_config(), show_progress=False).run_dir
    jobs, port = Jobs(tmp_path / "board"), free_port()
    jobs.serve(run, port)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy)
    assert jobs.server(run)["port"] == port
    reply = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"texts": ["acme beats the quarter"]})
    assert reply.status_code == 200
    assert jobs.stop_server(run)
    wait_for(lambda: jobs.server(run) is None)
    assert not jobs.stop_server(run)
