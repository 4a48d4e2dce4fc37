"""Backbones, inference and the trained-model wrapper."""
