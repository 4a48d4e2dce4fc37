"""The model card of a pretrained backbone: what it was trained from (files, counts,
checksums; never the text), the leakage guard, and the held-out loss before and after."""

from __future__ import annotations

from typing import Any

from fintune.config import PretrainConfig


def render_pretrain_card(cfg: PretrainConfig, report: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Markdown for ``model/README.md``."""
    blocks, guard, training = report["blocks"], report["leakage_guard"], metrics["training"]
    before, after = metrics["before"], metrics["validation"]
    lines = [
        f"# {cfg.backbone}, further pretrained with fintune", "",
        f"Continued pretraining of `{cfg.backbone}` ({metrics['objective']} objective"
        + (f", {cfg.masking.probability:.0%} of words masked" + (", whole words" if cfg.masking.whole_word else "")
           if metrics["objective"] == "mlm" else "") + f") on {blocks['train_tokens']:,} tokens in "
        f"{blocks['train_blocks']:,} blocks of {blocks['width']}. {metrics['head']}.", "",
        "Use it as a backbone: `model.backbone: <this folder>` in a fintune config, or "
        "`AutoModel.from_pretrained(<this folder>)`.", "",
        "## Corpus", "",
        "| source | files | bytes | texts | sha256 |", "|---|---:|---:|---:|---|",
        *(f"| `{s['path']}` | {s['files']} | {s['bytes']:,} | {s['texts']:,} | `{s['sha256']}` |"
          for s in report["sources"]), "",
        f"Texts read {report['texts_read']:,}; kept {report['texts_kept']:,}; dropped as duplicates "
        f"{report['dropped_duplicates']:,}, as too short {report['dropped_too_short']:,}; personal data masked "
        f"in {report['texts_masked']:,} (types: {', '.join(cfg.corpus.privacy.types) or 'none'}"
        + ("" if cfg.corpus.privacy.mask is not False else "; masking off") + ").", "",
        "## Leakage guard", "",
    ]
    if guard["files"]:
        lines += ["Texts of these evaluation files were removed from the corpus:", "",
                  "| file | texts | sha256 |", "|---|---:|---|",
                  *(f"| `{s['path']}` | {s['texts']:,} | `{s['sha256']}` |" for s in guard["files"]), "",
                  f"Removed: {guard['excluded_exact']:,} exact matches, {guard['excluded_normalized']:,} more after "
                  "normalization (case, punctuation, spacing).", ""]
    else:
        lines += ["No evaluation files were excluded (`corpus.exclude` was empty): do not evaluate this model "
                  "on text that may be in the corpus.", ""]
    lines += [
        "## Held-out loss", "",
        "| | loss | perplexity |", "|---|---:|---:|",
        f"| before | {before['loss']:.4f} | {before['perplexity']:.2f} |",
        f"| after | {after['loss']:.4f} | {after['perplexity']:.2f} |", "",
        f"On {after['tokens']:,} held-out tokens ({blocks['validation_blocks']:,} blocks, texts held out by hash). "
        f"Training: {training['global_step']:,} steps, {training['train_seconds']:.0f} s, "
        f"{training['train_samples_per_s']:.1f} blocks/s, {training['precision']}.", "",
    ]
    return "\n".join(lines)
