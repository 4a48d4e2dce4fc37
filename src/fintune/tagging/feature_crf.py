"""A feature-based CRF beside the neural tagger (``model.feature_crf``), and their ensemble.

The CRF (CRFsuite, L-BFGS with L1 and L2 penalties, Okazaki 2007) reads the hand-made word
features of :mod:`fintune.tagging.features`. It trains in seconds on the same sentences and
tags as the encoder. The two disagree in useful ways: on filings the CRF is precise (case
and spelling) and the encoder finds more (context). The ensemble takes, per word, the
weighted mean of the two tag distributions (the CRF's marginals; the encoder's softmax, or
its CRF layer's marginals) and decodes the best sequence the tag scheme allows. The weight is
the one of :data:`WEIGHTS` with the best entity F1 on the validation split, so the test
split never picks it.

The CRF is saved in CRFsuite's own binary format (``feature_crf.crfsuite`` beside the
encoder), never as a pickle.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fintune.tagging.crf import CRF
from fintune.tagging.features import sentence_features

FILE = "feature_crf.crfsuite"
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # the CRF's share: 0 is the encoder alone, 1 the CRF alone
FLOOR = 1e-6  # a tag neither model gives any probability stays possible, just very unlikely
# The settings of the usual CRFsuite baseline (sklearn-crfsuite's CoNLL tutorial).
PARAMS = {"c1": 0.1, "c2": 0.1, "max_iterations": 200, "feature.possible_transitions": True}


class FeatureCRF:
    """A trained CRFsuite model over ``tags``; per-word tag marginals of new sentences."""

    def __init__(self, model: bytes, tags: Sequence[str]) -> None:
        import pycrfsuite

        self.model, self.tags = model, list(tags)
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open_inmemory(model)
        known = set(self._tagger.labels())
        self._columns = [(k, t) for k, t in enumerate(self.tags) if t in known]

    @classmethod
    def fit(cls, sentences: Sequence[list[str]], labels: Sequence[list[str]], tags: Sequence[str]) -> FeatureCRF:
        """Train on words and their tags."""
        import pycrfsuite

        trainer = pycrfsuite.Trainer(verbose=False)
        for words, row in zip(sentences, labels):
            if words:
                trainer.append(sentence_features(list(words)), list(row))
        trainer.set_params(PARAMS)
        with tempfile.TemporaryDirectory(prefix="fintune-crf-") as tmp:
            trainer.train(str(Path(tmp) / FILE))
            return cls((Path(tmp) / FILE).read_bytes(), tags)

    @classmethod
    def load(cls, folder: Path, tags: Sequence[str]) -> FeatureCRF:
        """The CRF saved in ``folder``."""
        return cls((Path(folder) / FILE).read_bytes(), tags)

    def save(self, folder: Path) -> None:
        """Write the model file into ``folder``."""
        (Path(folder) / FILE).write_bytes(self.model)

    def marginals(self, sentences: Sequence[list[str]]) -> list[np.ndarray]:
        """One (words, tags) array of probabilities per sentence, columns in ``tags`` order."""
        out = []
        for words in sentences:
            probs = np.zeros((len(words), len(self.tags)), dtype=np.float32)
            if words:
                self._tagger.set(sentence_features(list(words)))
                for k, tag in self._columns:
                    probs[:, k] = [self._tagger.marginal(tag, i) for i in range(len(words))]
            out.append(probs)
        return out


@dataclass
class TagEnsemble:
    """The feature CRF, its share of the mixed distribution, and the scheme's allowed moves
    (a :class:`CRF` with no learned scores)."""

    crf: FeatureCRF
    weight: float
    constraints: CRF

    def decode(self, neural: Sequence[np.ndarray], sentences: Sequence[list[str]]) -> tuple[list[list[int]], list[list[float]]]:
        """Tag ids per word and the mixed probability of each, given the encoder's distributions."""
        return mix_and_decode(neural, self.crf.marginals(sentences), self.weight, self.constraints)


def mix_and_decode(neural: Sequence[np.ndarray], crf: Sequence[np.ndarray], weight: float,
                   constraints: CRF) -> tuple[list[list[int]], list[list[float]]]:
    """Tag ids per word from ``weight`` x the CRF's marginals + the rest x the encoder's, and the
    mixed probability of each chosen tag. ``constraints`` (a CRF with no learned scores) keeps
    the sequence to the scheme's allowed moves."""
    ids, probs = [], []
    for a, b in zip(neural, crf):
        if len(a) == 0:
            ids.append([])
            probs.append([])
            continue
        mixed = (1.0 - weight) * a + weight * b
        emissions = torch.from_numpy(np.log(np.maximum(mixed, FLOOR)))[None]
        path = constraints.decode(emissions, torch.ones(emissions.shape[:2], dtype=torch.bool))[0]
        ids.append(path)
        probs.append([float(mixed[w, t]) for w, t in enumerate(path)])
    return ids, probs
