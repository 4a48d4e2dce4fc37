"""SetFit (Tunstall et al. 2022, "Efficient few-shot learning without prompts"): contrastive
fine-tuning of the sentence encoder on pairs of training texts (same label: similar,
different labels: dissimilar), then a linear head on the tuned encoder's sentence vectors.

With 8 to 64 labels per class a classifier fine-tuned end to end barely moves from its random
head; pairs multiply the training signal (n texts give n² pairs) and shape the vector space
the head then reads. The pairs and the contrastive step are the ``setfit`` library's own
(its ``Trainer.train_embeddings``); fintune then trains the probe's linear head on the tuned
vectors with its one loop, so the run is saved, evaluated, calibrated and served like any
probe (``model.kind: probe``).
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from fintune.strategies.base import Strategy, StrategyConfig, register

if TYPE_CHECKING:
    from torch import nn


class SetFitConfig(StrategyConfig):
    name: Literal["setfit"] = "setfit"
    num_iterations: int = Field(20, ge=1, description="pairs drawn per training text (SetFit's default)")
    body_epochs: int = Field(1, ge=1, description="epochs of contrastive training over the pairs")
    body_lr: float = Field(2e-5, gt=0, description="learning rate of the encoder during contrastive training")
    batch_size: int = Field(16, ge=1, description="pairs per contrastive step")
    loss: Literal["cosine"] = Field("cosine", description="CosineSimilarityLoss on the pairs, as SetFit")


@register
class SetFit(Strategy):
    name = "setfit"
    Config = SetFitConfig
    kinds = frozenset({"probe"})
    tasks = frozenset({"classification"})

    def adapt_encoder(self, encoder: nn.Module, backbone: str, texts: list[str], labels: list[int],
                      max_length: int, seed: int) -> None:
        """Contrastive training of a copy of the backbone by ``setfit``, whose weights then
        replace ``encoder``'s (the probe pools and normalizes as the copy did: mean, L2)."""
        from fintune.errors import needs

        with needs("fewshot", "strategy setfit"):
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, models
            from setfit import SetFitModel, Trainer, TrainingArguments

        cfg: SetFitConfig = self.config  # type: ignore[assignment]
        body = models.Transformer(backbone, max_seq_length=max_length)
        pooling = models.Pooling(body.get_word_embedding_dimension(), pooling_mode="mean")
        st = SentenceTransformer(modules=[body, pooling, models.Normalize()], device="cpu")
        st.to(next(encoder.parameters()).device)
        model = SetFitModel(model_body=st)
        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(output_dir=out, batch_size=cfg.batch_size, num_epochs=cfg.body_epochs,
                                     num_iterations=cfg.num_iterations, body_learning_rate=cfg.body_lr,
                                     seed=seed, report_to="none", save_strategy="no", show_progress_bar=False,
                                     max_length=max_length)
            trainer = Trainer(model=model, args=args,
                              train_dataset=Dataset.from_dict({"text": texts, "label": labels}))
            trainer.train_embeddings(texts, labels, args=args)
        encoder.load_state_dict(body.auto_model.state_dict())
