"""Data-parallel PyTorch training on pooled Ray workers (torch.distributed): the model zoo, the loop, checkpoints and resume (docs/pipelines.md)."""
