"""The names of what a run folder holds, and which settings a resumed run may change."""

from fintune.training.loop import BEST, CHECKPOINT, HISTORY, STEPS

CONFIG = "config.yaml"
DATA_CHECK = "data_check.json"
SPLITS = "splits.json"
METRICS = "metrics.json"
MODEL = "model"
EVAL = "eval"
MARKER = ".fintune-run"  # written when a run starts: this folder is fintune's to replace
# What makes a folder a run; a data_check.json alone is not (`data check` then `train` is the usual path).
RUN_MARKERS = (CONFIG, METRICS, CHECKPOINT, MODEL)
# Everything fintune writes into a run folder: --overwrite replaces a run only when it holds
# nothing else, so a user's own file is never deleted.
CORPUS = "corpus"  # pretraining: the packed token blocks
MEMBERS = "members"  # an ensemble's member runs
OWNED = {MARKER, CONFIG, DATA_CHECK, SPLITS, METRICS, MODEL, EVAL, CHECKPOINT, BEST, HISTORY, STEPS, CORPUS, MEMBERS,
         "merged", "onnx", "onnx-int8", "serve", "monitor", "report.html", "fairness.json", "privacy_audit.json",
         "walk_forward.json", "walk_forward.png", "trials", "best_config.yaml", "study.db", "leaderboard.json"}
LEADERBOARD = "leaderboard.json"  # challengers scored on the run's test split (the quickstart writes it)
OWNED_PATTERNS = ("config.before-resume-*.yaml", "fold_*", ".*.tmp-*", ".*.partial-*")
# Keys that never change what a run computes: they may differ on --resume.
RESUME_FREE = ("output_dir", "train.eval_batch_size", "train.num_threads", "train.checkpoint_every", "deploy",
               "tune", "track")
SUMMARY_METRICS = ("f1", "precision", "recall", "exact_match", "token_f1", "micro_f1", "samples_f1", "subset_accuracy",
                   "hamming_loss", "accuracy", "weighted_f1", "macro_f1",
                   "roc_auc", "pr_auc", "ks", "gini", "brier", "ece", "mse", "mae", "r2", "directional_accuracy", "loss", "perplexity")
