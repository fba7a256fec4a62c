"""The register stage: an exported model becomes a model version with its lineage (docs/runs-and-models.md)."""
