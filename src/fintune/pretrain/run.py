"""``fintune pretrain``: continued pretraining of a backbone on a firm's own text.

The corpus is read as a stream, cleaned, masked, deduplicated and stripped of evaluation
texts (:mod:`fintune.data.corpus`), packed into token blocks on disk
(:mod:`fintune.data.blocks`), and trained with the one training loop (progress, checkpoints,
resume, bf16, several processes) on masked-language modeling or next-token prediction. The
output, ``RUN/model``, is a plain Hugging Face folder that ``model.backbone`` accepts.

The run folder::

    config.yaml  data_check.json (the corpus report)  corpus/ (packed blocks, while training: --resume reuses them)
    steps.jsonl  metrics.jsonl  checkpoint.pt (while training)  metrics.json  model/
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sized
from pathlib import Path
from typing import Any

from fintune.config import PretrainConfig, dump_config
from fintune.console import console
from fintune.data import Examples
from fintune.data.blocks import BlockLayout, BlockStore, BlockWriter, pack
from fintune.data.corpus import Corpus, is_held_out
from fintune.errors import ConfigError, FintuneError
from fintune.files import write_text
from fintune.models.backbones import load_error, resolve_backbone
from fintune.pretrain.card import render_pretrain_card
from fintune.pretrain.objectives import (
    CausalBatches, MaskedBatches, MaskedPositions, held_out_loss, masked_loss, next_token_loss,
)
from fintune.recipes.base import training_summary
from fintune.rundir import CORPUS, DATA_CHECK, RunFolder, RunResult
from fintune.strategies import build_strategy, strategy_config
from fintune.training import loop
from fintune.training.distributed import is_main_process

MARKER = "pretraining.json"  # in the model folder: what it was trained from


class _Blocks(Sized):
    """Stands in for a split's examples in the loop, which needs their count only."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _examples(store: BlockStore, source: str) -> Examples:
    return Examples(_Blocks(len(store)), None, None, source)  # type: ignore[arg-type]


class _BlockInputs:
    """What the loop encodes a split into: the block store and its lengths (read from disk)."""

    def __init__(self, stores: dict[str, BlockStore], pad_id: int) -> None:
        self.stores, self._pad = stores, pad_id

    def __call__(self, examples: Examples) -> dict[str, Any]:
        store = self.stores[examples.source]
        return {"store": store, "lengths": store.lengths}

    @property
    def pad_id(self) -> int:
        return self._pad


def objective_of(cfg: PretrainConfig, config: Any) -> str:
    """``mlm`` or ``causal``: as configured, or from the backbone's architecture."""
    if cfg.objective != "auto":
        return cfg.objective
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) or getattr(config, "is_decoder", False):
        return "causal"
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "mlm"
    return "causal"


def load_model(cfg: PretrainConfig, objective: str) -> tuple[Any, str]:
    """The backbone with its language-model head, and a line saying where the head came from."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForCausalLM if objective == "causal" else AutoModelForMaskedLM
    try:
        model, info = cls.from_pretrained(resolve_backbone(cfg.backbone), use_safetensors=True,
                                          trust_remote_code=cfg.trust_remote_code, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None
    prefix = getattr(model, "base_model_prefix", "")
    head_missing = [k for k in info.get("missing_keys", []) if not k.startswith(prefix + ".")]
    if objective == "causal":
        line = "next-token loss with the model's own output layer"
    elif head_missing:
        line = ("MLM head: the checkpoint has none; its output layer is tied to the input embeddings, "
                f"the rest ({len(head_missing)} tensors) initialized fresh")
    else:
        line = "MLM head: the checkpoint's own"
    return model, line


def keep_unused_weights(backbone: str, saved: Path, prefix: str) -> list[str]:
    """Copy into ``saved`` the backbone's weights the language-model class drops (BERT's pooler:
    a classifier built on the saved folder then starts from the pretrained pooler, not a random
    one). Returns the names copied."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = Path(backbone) / "model.safetensors"
    target = saved / "model.safetensors"
    if not source.is_file() or not target.is_file():
        return []
    tensors = load_file(target)
    names = set(tensors)
    copied = []
    with safe_open(source, framework="pt") as fh:
        for key in fh.keys():
            name = key if not prefix or key.startswith(prefix + ".") else f"{prefix}.{key}"
            if "pooler" in key and name not in names:
                tensors[name] = fh.get_tensor(key)
                copied.append(name)
    if copied:
        save_file(tensors, target, metadata={"format": "pt"})
    return copied


def pack_corpus(cfg: PretrainConfig, tokenizer: Any, causal: bool, folder: Path) -> dict[str, Any]:
    """Read the corpus once into ``folder``/{train,validation} block files; the corpus report."""
    corpus = Corpus(cfg.corpus)
    layout = BlockLayout.for_tokenizer(tokenizer, cfg.max_length, causal)
    writers = (BlockWriter(folder / "train", layout), BlockWriter(folder / "validation", layout))
    fraction = cfg.corpus.validation_fraction
    pack(corpus, tokenizer, writers, lambda text: is_held_out(text, fraction))
    train, validation = (w.close() for w in writers)
    report = corpus.stats.report()
    report["blocks"] = {"width": cfg.max_length, "train_blocks": len(train), "train_tokens": train.tokens,
                        "validation_blocks": len(validation), "validation_tokens": validation.tokens}
    train.close()
    validation.close()
    if not len(train):
        raise FintuneError(f"the corpus gave no training text ({report['texts_read']} texts read, "
                           f"{report['texts_kept']} kept); check corpus.sources and corpus.min_chars")
    return report


def _print_report(report: dict[str, Any]) -> None:
    guard = report["leakage_guard"]
    blocks = report["blocks"]
    console.print(f"corpus: {report['texts_read']:,} texts read, {report['texts_kept']:,} kept "
                  f"({report['dropped_duplicates']:,} duplicates, {report['dropped_too_short']:,} too short, "
                  f"{guard['excluded_exact'] + guard['excluded_normalized']:,} found in evaluation files: "
                  f"{guard['excluded_exact']:,} exact, {guard['excluded_normalized']:,} normalized; "
                  f"{report['texts_masked']:,} masked) -> {blocks['train_blocks']:,} blocks of {blocks['width']} "
                  f"tokens ({blocks['train_tokens']:,} tokens), {blocks['validation_blocks']:,} held out")


def _prepare_corpus(cfg: PretrainConfig, run: RunFolder, tokenizer: Any, causal: bool,
                    resume: bool) -> tuple[Path, dict[str, Any]]:
    """The packed corpus: the run's own on --resume, else packed into a temporary folder that
    becomes ``RUN/corpus`` once the run starts (a bad corpus leaves no run behind)."""
    existing = run.path / CORPUS
    if resume and BlockStore.exists(existing / "train") and (run.path / DATA_CHECK).is_file():
        return existing, json.loads((run.path / DATA_CHECK).read_text(encoding="utf-8"))
    parent = run.final.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run.final.name}.corpus-partial-{os.getpid()}-", dir=parent))
    try:
        report = pack_corpus(cfg, tokenizer, causal, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, report


def pretrain(cfg: PretrainConfig, *, resume: bool = False, overwrite: bool = False, force: bool = False,
             show_progress: bool = True) -> RunResult | None:
    """Continue pretraining ``cfg.backbone`` on ``cfg.corpus``; the run's result (None on the
    processes after the first of a multi-process run)."""
    run = RunFolder(Path(cfg.output_dir))
    with run.opened(cfg, resume=resume, overwrite=overwrite, force=force) as finished:
        if finished is not None:
            return finished
        return _pretrain(cfg, run, resume=resume, overwrite=overwrite, show_progress=show_progress)


def _pretrain(cfg: PretrainConfig, run: RunFolder, *, resume: bool, overwrite: bool,
              show_progress: bool) -> RunResult | None:
    from transformers import AutoConfig, AutoTokenizer, set_seed

    main = is_main_process()
    set_seed(cfg.seed)
    path = resolve_backbone(cfg.backbone)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        config = AutoConfig.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.backbone, exc) from None
    objective = objective_of(cfg, config)
    causal = objective == "causal"
    if not causal and tokenizer.mask_token_id is None:
        raise ConfigError(f"backbone '{cfg.backbone}' has no mask token, so it cannot learn masked-language "
                          "modeling; set objective: causal for a decoder LM")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model, head_line = load_model(cfg, objective)
    corpus_dir, report = _prepare_corpus(cfg, run, tokenizer, causal, resume)
    _print_report(report)
    console.print(head_line)
    run.start(cfg, report, resume=resume, overwrite=overwrite)
    if corpus_dir != run.path / CORPUS:
        if main:
            shutil.rmtree(run.path / CORPUS, ignore_errors=True)
            os.replace(corpus_dir, run.path / CORPUS)
            corpus_dir = run.path / CORPUS
    train_store, val_store = BlockStore(corpus_dir / "train"), BlockStore(corpus_dir / "validation")
    try:
        return _train(cfg, run, model, tokenizer, objective, head_line, train_store, val_store, report,
                      resume=resume, show_progress=show_progress)
    finally:
        train_store.close()
        val_store.close()
        if corpus_dir != run.path / CORPUS:
            shutil.rmtree(corpus_dir, ignore_errors=True)  # another process's own copy


def _train(cfg: PretrainConfig, run: RunFolder, model: Any, tokenizer: Any, objective: str, head_line: str,
           train_store: BlockStore, val_store: BlockStore, report: dict[str, Any], *, resume: bool,
           show_progress: bool) -> RunResult | None:
    causal = objective == "causal"
    pad_id = tokenizer.pad_token_id
    net = model
    if causal:
        train_batches: Any = CausalBatches(train_store, pad_id)
        val_batches: Any = CausalBatches(val_store, pad_id)
        loss = next_token_loss
    else:
        special = set(tokenizer.all_special_ids)
        kwargs = {"mask_id": tokenizer.mask_token_id, "pad_id": pad_id, "vocab_size": len(tokenizer),
                  "special_ids": special, "seed": cfg.seed}
        train_batches, val_batches = (MaskedBatches(s, cfg.masking, **kwargs) for s in (train_store, val_store))
        loss = masked_loss
        if not MaskedPositions.fits(model):
            raise FintuneError(f"{type(model).__name__} does not split into an encoder and one head; "
                               "fintune pretrain cannot train its masked-LM objective")
        net = MaskedPositions(model)
    n_val = min(len(val_store), cfg.corpus.max_validation_blocks)
    val_store_view = val_store if n_val else train_store  # no held-out text: the loss on training blocks
    if not n_val:
        console.print("[yellow]no held-out blocks (corpus.validation_fraction 0 or a tiny corpus); the loss "
                      "before and after is measured on training blocks[/]")
        n_val = min(len(train_store), cfg.corpus.max_validation_blocks)
        val_batches = train_batches

    def evaluate(net: Any, encoded: dict[str, Any], dtype: Any) -> dict[str, Any]:
        return held_out_loss(net, val_batches, loss, n_val, cfg.train.eval_batch_size, dtype)

    before = evaluate(net, {}, None)
    console.print(f"held-out {objective} loss before: {before['loss']:.4f} (perplexity {before['perplexity']:.2f})")
    inputs = _BlockInputs({"corpus": train_store, "held out": val_store_view}, pad_id)
    strategy = build_strategy(strategy_config("full"))
    result = loop.train(net, strategy, inputs, _examples(train_store, "corpus"),
                        _examples(val_store_view, "held out"), task="pretraining",
                        label_names=None, cfg=cfg.train, seed=cfg.seed, work_dir=run.path, resume=resume,
                        show_progress=show_progress, objective=loss, evaluator=evaluate, batcher=train_batches)
    training = training_summary(result)
    if not is_main_process():
        return None
    after = evaluate(net, {}, None)
    console.print(f"held-out {objective} loss after: {after['loss']:.4f} (perplexity {after['perplexity']:.2f})")
    metrics = {"objective": objective, "before": before, "validation": after, "head": head_line,
               "corpus": report["blocks"], "training": training}
    meta = {"format": 1, "backbone": cfg.backbone, "objective": objective, "max_length": cfg.max_length,
            "corpus": {"sources": report["sources"], **report["blocks"]}}

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        kept = keep_unused_weights(resolve_backbone(cfg.backbone), tmp, getattr(model, "base_model_prefix", ""))
        if kept:
            console.print(f"kept {len(kept)} weights of the backbone that pretraining does not use "
                          f"({', '.join(kept[:3])}{'...' if len(kept) > 3 else ''})")
        tokenizer.save_pretrained(tmp)
        write_text(tmp / MARKER, json.dumps(meta, indent=2))
        write_text(tmp / "README.md", render_pretrain_card(cfg, report, metrics))
        write_text(tmp / "pretrain_config.yaml", dump_config(cfg))

    done = run.complete(write, metrics, marker=MARKER)
    # The blocks only served this run (and its resumption); the card keeps the corpus's checksums.
    shutil.rmtree(done.run_dir / CORPUS, ignore_errors=True)
    console.print(f"backbone for fine-tuning: [bold]model.backbone: {done.model_dir}[/]")
    return done
