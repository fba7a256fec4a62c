"""The arithmetic under the federated stage, without Ray: pairwise masks cancel in the sum (also after a dropout, with
the survivors' corrections) while each masked vector alone is noise; partitions cover every row once and skew labels."""

from __future__ import annotations

import numpy as np

from aidc.federated import secure
from aidc.federated.partition import partition


def test_masks_cancel_in_the_sum_and_survive_a_dropout() -> None:
    gen = np.random.default_rng(0)
    updates = {i: gen.normal(size=50) for i in range(4)}
    keys = {i: secure.keypair() for i in range(4)}
    peers = {i: pub for i, (_, pub) in keys.items()}
    masked = {i: secure.masked(updates[i], i, keys[i][0], peers, round_=3) for i in range(4)}
    total = sum(masked.values(), np.zeros(50, dtype=np.uint64))
    assert np.allclose(secure.decode(total), sum(updates.values()), atol=1e-6)
    assert np.abs(secure.decode(masked[0])).mean() > 1e6  # one masked update alone says nothing
    # client 2 drops after the key exchange: the survivors' corrections unmask the sum of the other three
    survivors = [0, 1, 3]
    total = sum((masked[i] for i in survivors), np.zeros(50, dtype=np.uint64))
    for i in survivors:
        total = total - secure.correction(i, keys[i][0], {2: peers[2]}, 3, 50)
    assert np.allclose(secure.decode(total), sum(updates[i] for i in survivors), atol=1e-6)


def test_dirichlet_partitions_cover_every_row_once_and_are_skewed() -> None:
    labels = np.repeat(np.arange(10), 100)
    parts = partition(labels, 5, "dirichlet", alpha=0.3, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    again = partition(labels, 5, "dirichlet", alpha=0.3, seed=1)  # every client draws the same partitioning
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    top_share = [np.bincount(labels[p], minlength=10).max() / len(p) for p in parts]
    assert max(top_share) > 0.3  # IID would give each client ≈ 0.1 of every class
    iid = partition(labels, 5, "iid", seed=1)
    assert max(np.bincount(labels[p], minlength=10).max() / len(p) for p in iid) < 0.2
