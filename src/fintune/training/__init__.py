"""The shared training loop, batching and checkpoints."""
