"""Numbers from predictions, shared by training (early stopping) and evaluation (reports):
metrics, calibration, decision thresholds, groups. No model, no files."""
