"""Metadata store: datasets, runs, stages, metrics, artifacts, models, deployments and lineage, in SQL."""

from __future__ import annotations

from aidc.store.metadata.base import MetadataStore


def open_metadata_store(url: str) -> MetadataStore:
    """The metadata store for ``url`` (sqlite:///… or postgresql+psycopg://…), migrated to the newest schema."""
    from aidc.store.metadata.sql import SqlMetadataStore

    return SqlMetadataStore(url)


__all__ = ["MetadataStore", "open_metadata_store"]
