"""Rows whose label looks wrong: confident learning (Northcutt et al. 2021) through ``cleanlab``.

Every training row gets class probabilities from a quick model that never saw it (k folds:
each fold is scored by a model fitted on the others), and ``cleanlab.filter.find_label_issues``
flags the rows whose given label those probabilities contradict beyond the per-class
confidence thresholds it estimates. The quick model is TF-IDF over word and character
n-grams with logistic regression for text (seconds to fit five times; on tweets its
out-of-fold accuracy trails a fine-tuned encoder's, so it flags more clean rows than a
stronger model would), and logistic regression on one-hot and standardized columns for tables. Annotators of financial sentiment disagree (Financial
PhraseBank publishes four agreement levels); these are the rows to look at first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fintune.data.examples import Examples
from fintune.errors import DataError, needs

ISSUES_FILE = "label_issues.csv"


@dataclass
class LabelIssues:
    """The suspect rows (a table: row, text, given and suggested label, label quality) and the
    out-of-fold accuracy of the quick model behind them."""

    table: pd.DataFrame
    checked: int
    model_accuracy: float
    folds: int

    @property
    def positions(self) -> np.ndarray:
        """Positions of the suspect rows in the checked examples."""
        return self.table["position"].to_numpy()

    def summary(self) -> dict[str, object]:
        return {"checked": self.checked, "found": len(self.table), "folds": self.folds,
                "quick_model_accuracy": round(self.model_accuracy, 4),
                "method": "cleanlab.find_label_issues on out-of-fold probabilities of TF-IDF (text) or "
                          "one-hot (table) logistic regression"}


def out_of_fold_probabilities(examples: Examples, n_labels: int, folds: int, seed: int,
                              text: bool = True) -> np.ndarray:
    """Class probabilities for every row from a quick model fitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(examples.labels)
    folds = usable_folds(labels, folds)
    inputs, model = _quick_model(examples, text)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, inputs, labels, cv=cv, method="predict_proba")
    # A class absent from some fold's training part gets no column there: align to all labels.
    out = np.zeros((len(labels), n_labels))
    out[:, np.unique(labels)] = probs
    return out


def usable_folds(labels: np.ndarray, folds: int) -> int:
    """``folds``, or fewer when the rarest class has fewer rows (stratified folds need one each)."""
    counts = np.bincount(labels)
    return max(2, min(folds, int(counts[counts > 0].min())))


def find_label_issues(examples: Examples, label_names: list[str], folds: int = 5, seed: int = 0,
                      text: bool = True) -> LabelIssues:
    """The rows of ``examples`` (a labeled classification split) whose labels look wrong,
    worst first; ``text`` False reads the feature columns instead of the text."""
    with needs("labels", "finding label issues"):
        from cleanlab.filter import find_label_issues as cleanlab_issues
        from cleanlab.rank import get_label_quality_scores

    if examples.labels is None or examples.labels.dtype.kind not in "iu":
        raise DataError("label issues are found for classification labels", file=examples.source)
    labels = np.asarray(examples.labels)
    probs = out_of_fold_probabilities(examples, len(label_names), folds, seed, text)
    ranked = cleanlab_issues(labels, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels, probs)
    rows = examples.rows if examples.rows is not None else np.arange(1, len(labels) + 1)
    table = pd.DataFrame({
        "position": ranked, "row": rows[ranked], "text": [examples.texts[i] for i in ranked],
        "given_label": [label_names[labels[i]] for i in ranked],
        "suggested_label": [label_names[int(probs[i].argmax())] for i in ranked],
        "label_quality": quality[ranked].round(4),
    })
    accuracy = float((probs.argmax(1) == labels).mean())
    return LabelIssues(table, len(labels), accuracy, usable_folds(labels, folds))


def _quick_model(examples: Examples, text: bool) -> tuple[object, object]:
    """What the quick model reads, and the unfitted model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    classifier = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced")
    if text or examples.features is None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        tfidf = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))])
        return examples.texts, make_pipeline(tfidf, classifier)
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
        (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude="number")))
    return examples.features.reset_index(drop=True), make_pipeline(columns, classifier)
