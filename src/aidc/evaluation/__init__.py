"""Classification metrics, the evaluate stage and its promotion gate (docs/pipelines.md)."""
