"""How the clients' private partitions are drawn: IID, or label skew by a Dirichlet(α) over each class's rows."""

from __future__ import annotations

from typing import Literal

import numpy as np

MIN_ROWS = 10  # a client with fewer rows than this is redrawn (a client with nothing to train on is no client)


def partition(
    labels: np.ndarray, clients: int, scheme: Literal["iid", "dirichlet"], *, alpha: float = 0.5, seed: int = 0
) -> list[np.ndarray]:
    """Row indices of each client's partition; every row in exactly one. Deterministic in the seed, so each client
    can draw the same partitioning and keep only its own share (nobody hands rows around)."""
    gen = np.random.default_rng(seed)
    n = len(labels)
    if scheme == "iid":
        return [np.sort(part) for part in np.array_split(gen.permutation(n), clients)]
    classes = np.unique(labels)
    for _ in range(100):
        shares: list[list[int]] = [[] for _ in range(clients)]
        for c in classes:
            rows = gen.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(gen.dirichlet([alpha] * clients)) * len(rows)).astype(int)[:-1]
            for k, part in enumerate(np.split(rows, cuts)):
                shares[k].extend(part.tolist())
        if min(len(s) for s in shares) >= min(MIN_ROWS, n // clients):
            break
    return [np.sort(np.asarray(s, dtype=np.int64)) for s in shares]


def label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> list[dict[int, int]]:
    """Rows per class of each partition (the report shows how non-IID the clients are)."""
    return [{int(c): int((labels[p] == c).sum()) for c in np.unique(labels[p])} for p in parts]
