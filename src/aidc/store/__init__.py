"""Backends for what aidc keeps: metadata (SQL) and content-addressed artifacts (docs/architecture.md)."""
