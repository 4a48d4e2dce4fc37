"""Ray: training in Ray Train workers, scoring on Ray Data actors (:mod:`fintune.engines.ray`)."""

from __future__ import annotations

from fintune.engines.base import Engine, PredictRequest, TrainRequest, register_engine


@register_engine
class RayEngine(Engine):
    """A local Ray with ``workers`` CPUs, or the cluster at ``address``."""

    name = "ray"
    summary = "Ray Train workers (train) or Ray Data actors (predict); --workers, --address"
    works = frozenset({"train", "predict"})
    hint = "pretraining runs on local or torchrun"

    def train(self, request: TrainRequest) -> int:
        from fintune.engines.ray import train

        train(request.config, request.overrides, workers=request.workers, address=request.address,
              resume=request.resume, overwrite=request.overwrite, force=request.force)
        return 0

    def predict(self, request: PredictRequest) -> None:
        from fintune.engines.ray import predict_file

        predict_file(request.run, request.input, request.output, address=request.address, workers=request.workers,
                     batch_size=request.batch_size)


@register_engine
class SparkEngine(Engine):
    """Spark scores inside a Spark job, through a UDF; nothing runs from the command line."""

    name = "spark"
    summary = "a pandas UDF in your Spark job: fintune.engines.spark.predict_udf(RUN)"
    works = frozenset()
    hint = "Spark scores inside a Spark job: fintune.engines.spark.predict_udf in the job"
