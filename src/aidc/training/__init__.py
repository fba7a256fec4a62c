"""Data-parallel PyTorch training on Ray Train: the model zoo, the loop, checkpoints and resume (docs/pipelines.md)."""
