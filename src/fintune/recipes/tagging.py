"""The token_classification recipe: tagged sentences in, a saved tagger and entity scores out.

It shares the training loop with every other task: the loop gets the tagger, the subword
rows of :class:`TagInputs`, the :class:`TagLoss` objective and an evaluator that scores
entities on the validation sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples
from fintune.errors import FintuneError
from fintune.models.backbones import (
    backbone_config, checkpoint_activations, load_error, load_tokenizer, resolve_backbone,
)
from fintune.models.metadata import RunMeta, TaggerMeta
from fintune.recipes.base import Recipe, RecipeResult, TrainOptions, held_out, register_recipe, training_summary
from fintune.rundir import RunFolder
from fintune.strategies import build_strategy
from fintune.tagging.data import TaggedData, prepare_tagged, print_tagging_report
from fintune.tagging.metrics import entity_scores, write_tagging_evaluation
from fintune.tagging.feature_crf import WEIGHTS, FeatureCRF, TagEnsemble, mix_and_decode
from fintune.tagging.model import (
    TagInputs, TagLoss, TokenTagger, build_tagger, new_crf, predict_tags, tag_config_kwargs, tag_marginals,
)
from fintune.tagging.predictor import TaggerPredictor
from fintune.training import loop
from fintune.training.distributed import is_main_process


@register_recipe
class TaggingRecipe(Recipe):
    """Tagged sentences in, a saved tagger and entity scores out."""

    name = "tagging"
    kinds = frozenset({"text"})
    tasks = frozenset({"token_classification"})

    def __call__(self, cfg: RunConfig, run: RunFolder, options: TrainOptions) -> RecipeResult:
        tokenizer = load_tokenizer(cfg.model)
        if not getattr(tokenizer, "is_fast", False):
            raise FintuneError(f"token_classification needs a fast tokenizer (word alignment); backbone "
                               f"'{cfg.model.backbone}' has only a slow one")
        data = prepare_tagged(cfg.data, cfg.seed)
        print_tagging_report(data.report, console)
        loop.check_metric(cfg.train, data.validation, cfg.task, data.tags)
        strategy = build_strategy(cfg.strategy)
        model = _build(cfg, data)
        if cfg.train.gradient_checkpointing:
            checkpoint_activations(model)
        model = strategy.prepare(model)
        inputs = TagInputs(tokenizer, cfg.model.max_length, {t: i for i, t in enumerate(data.tags)},
                           cfg.model.case_features)
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        result = loop.train(
            model, strategy, inputs, data.train, data.validation, task=cfg.task, label_names=data.tags,
            cfg=cfg.train, seed=cfg.seed, work_dir=run.path, resume=options.resume,
            show_progress=options.show_progress, objective=TagLoss(inputs(data.train), model.crf),
            on_evaluate=options.on_evaluate,
            evaluator=_entity_evaluator(data.validation, inputs, data.tags, cfg.train.eval_batch_size),
        )
        training = training_summary(result)
        if not is_main_process():  # several processes: the first one evaluates and saves
            return RecipeResult(None, {"training": training}, training, data.report)
        tagger = strategy.finalize(model)
        metrics: dict[str, Any] = {"label_names": data.tags, "scheme": data.scheme}
        weight = None
        if cfg.model.feature_crf:
            tagger.ensemble, metrics["feature_crf"] = fit_ensemble(tagger, inputs, data, cfg.train.eval_batch_size)
            weight = tagger.ensemble.weight
        head = TaggerMeta(scheme=data.scheme, crf=cfg.model.crf, case_features=cfg.model.case_features,
                          lstm_hidden=cfg.model.lstm_hidden, feature_weight=weight)
        predictor = TaggerPredictor(tagger, tokenizer, RunMeta.for_run(cfg, TaggerPredictor.name, data.tags, tagger=head))
        for name, examples in held_out(data.validation, data.test).items():
            predicted = predictor.tags(examples, cfg.train.eval_batch_size)
            metrics[name] = write_tagging_evaluation(run.eval_dir(name), list(examples.labels), predicted,
                                                     examples.tokens or [], f"{name} ({Path(examples.source).name})")
        return RecipeResult(predictor, metrics, training, data.report)


def _build(cfg: RunConfig, data: TaggedData) -> TokenTagger:
    path = resolve_backbone(cfg.model.backbone)
    try:
        return build_tagger(cfg.model, path, data.tags, data.scheme,
                            backbone_config(cfg.model, **tag_config_kwargs(data.tags)))
    except (OSError, ValueError) as exc:
        raise load_error(cfg.model.backbone, exc) from None


def _entity_evaluator(validation: Examples, inputs: TagInputs, tags: list[str], batch_size: int) -> loop.Evaluator:
    gold = list(validation.labels)
    n_words = [len(t) for t in validation.tokens or []]

    def evaluate(model: Any, encoded: dict[str, Any], dtype: Any) -> dict[str, Any]:
        ids, _ = predict_tags(model, encoded, n_words, batch_size, inputs.pad_id, dtype)
        scores = entity_scores(gold, [[tags[i] for i in row] for row in ids])
        return {k: v for k, v in scores.items() if k != "per_type"}
    return evaluate


def fit_ensemble(tagger: TokenTagger, inputs: TagInputs, data: TaggedData,
                 batch_size: int) -> tuple[TagEnsemble, dict[str, Any]]:
    """Train the feature CRF on the training sentences and pick its share of the mixed tag
    distribution by entity F1 on validation; the members' own validation F1 go in the metrics."""
    if not len(data.validation):
        raise FintuneError("model.feature_crf picks the ensemble weight on validation sentences: give "
                           "data.validation or leave data.split.validation_size above 0")
    crf = FeatureCRF.fit(data.train.tokens or [], list(data.train.labels), data.tags)
    words = data.validation.tokens or []
    unlabelled = Examples(data.validation.texts, None, None, data.validation.source, parts={"tokens": words})
    neural = tag_marginals(tagger, inputs(unlabelled), [len(w) for w in words], batch_size, inputs.pad_id)
    crf_probs = crf.marginals(words)
    constraints = new_crf(data.tags, data.scheme)
    gold = list(data.validation.labels)
    by_weight = {}
    for weight in WEIGHTS:
        ids, _ = mix_and_decode(neural, crf_probs, weight, constraints)
        by_weight[weight] = entity_scores(gold, [[data.tags[i] for i in row] for row in ids])["f1"]
    best = max(WEIGHTS, key=lambda w: (by_weight[w], -abs(w - 0.5)))  # a tie goes to the more even mix
    console.print(f"feature CRF: weight {best} (validation F1 {by_weight[best]:.3f}; encoder alone "
                  f"{by_weight[0.0]:.3f}, CRF alone {by_weight[1.0]:.3f})")
    report = {"weight": best, "validation_f1": by_weight[best], "validation_f1_encoder": by_weight[0.0],
              "validation_f1_crf": by_weight[1.0], "validation_f1_by_weight": {str(w): f for w, f in by_weight.items()}}
    return TagEnsemble(crf, best, constraints), report
