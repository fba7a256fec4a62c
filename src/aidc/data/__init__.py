"""Dataset sources and preprocessing (clean, split, augment, normalize) and the data stage (docs/pipelines.md)."""
