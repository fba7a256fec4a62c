"""Lineage edges as a tree rooted at what was produced (model version ← ONNX ← checkpoint ← run ← dataset version)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aidc.errors import AidcError
from aidc.store.metadata.base import MetadataStore
from aidc.store.metadata.records import LineageEdge


@dataclass
class LineageNode:
    kind: str
    id: str
    relation: str | None = None  # how this node feeds the node below it; None for the root
    sources: list[LineageNode] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, LineageNode]]:
        """Depth-first, root first: the order a reader follows the chain upstream."""
        yield depth, self
        for src in self.sources:
            yield from src.walk(depth + 1)


def lineage_tree(edges: Iterable[LineageEdge], kind: str, id_: str) -> LineageNode:
    """Arrange upstream edges under the node (kind, id_); a node reached twice is shown once."""
    by_dst: dict[tuple[str, str], list[LineageEdge]] = {}
    for e in edges:
        by_dst.setdefault((e.dst_kind, e.dst_id), []).append(e)
    seen: set[tuple[str, str]] = set()

    def build(node: LineageNode) -> LineageNode:
        seen.add((node.kind, node.id))
        for e in by_dst.get((node.kind, node.id), []):
            if (e.src_kind, e.src_id) not in seen:
                node.sources.append(build(LineageNode(e.src_kind, e.src_id, e.relation)))
        return node

    return build(LineageNode(kind, str(id_)))


def describe(store: MetadataStore, kind: str, id_: str) -> str:
    """What a person recognises a lineage node by: a model or dataset ref, a short digest, a run id."""
    try:
        if kind == "model_version":
            return store.get_model_version_by_id(int(id_)).ref
        if kind == "dataset_version":
            return store.get_dataset_version(int(id_)).ref
    except (AidcError, ValueError):  # a dangling edge still shows its raw id
        return id_
    if id_.startswith("sha256:"):
        return "sha256:" + id_.removeprefix("sha256:")[:12]
    return id_
