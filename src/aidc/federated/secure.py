"""Secure aggregation by pairwise masks (after Bonawitz et al., CCS 2017, without the threshold secret sharing):
every pair of clients agrees a key over X25519, each adds the masks it shares with higher-numbered peers and
subtracts those with lower-numbered ones, so the masks cancel in the sum and the server learns only the sum.
Updates travel as fixed-point integers modulo 2^64 (the masks are uniform there, so a masked update says nothing).
When a client drops out after the keys were agreed, the survivors hand over their masks with it, and only those."""

from __future__ import annotations

import hashlib

import numpy as np

SCALE = float(2**24)  # fixed-point resolution: 6e-8, far below what a model update needs


def keypair() -> tuple[object, bytes]:
    """A fresh X25519 private key and its public bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, public


def pair_mask(private: object, peer_public: bytes, round_: int, size: int) -> np.ndarray:
    """The mask two clients share this round: a PRG (PCG64) seeded by their X25519 secret and the round."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    assert isinstance(private, X25519PrivateKey)
    secret = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    seed = int.from_bytes(hashlib.sha256(secret + round_.to_bytes(8, "big")).digest(), "big")
    return np.random.Generator(np.random.PCG64(seed)).integers(0, 2**64, size=size, dtype=np.uint64, endpoint=False)


def encode(vector: np.ndarray) -> np.ndarray:
    """Floats → fixed-point integers modulo 2^64."""
    return np.round(vector.astype(np.float64) * SCALE).astype(np.int64).view(np.uint64)


def decode(total: np.ndarray) -> np.ndarray:
    return total.view(np.int64).astype(np.float64) / SCALE


def masked(vector: np.ndarray, me: int, private: object, peers: dict[int, bytes], round_: int) -> np.ndarray:
    """``vector`` encoded and masked with every peer's pair mask (+ for higher ids, − for lower)."""
    out = encode(vector)
    for peer, public in peers.items():
        if peer == me:
            continue
        mask = pair_mask(private, public, round_, len(out))
        out = out + mask if peer > me else out - mask  # uint64 arithmetic wraps: exactly modulo 2^64
    return out


def correction(me: int, private: object, dropped: dict[int, bytes], round_: int, size: int) -> np.ndarray:
    """What this survivor added for the peers that dropped out: the server subtracts it to unmask the sum."""
    out = np.zeros(size, dtype=np.uint64)
    for peer, public in dropped.items():
        mask = pair_mask(private, public, round_, size)
        out = out + mask if peer > me else out - mask
    return out
