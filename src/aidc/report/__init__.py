"""Run reports: one self-contained HTML page per pipeline run, and lineage as a tree (docs/runs-and-models.md)."""
