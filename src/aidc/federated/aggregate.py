"""The server's side of a round: it sums what the clients sent (weighted updates, or masked ones whose masks cancel),
adds Gaussian noise when differential privacy is on, and moves the global model. It never sees a row of data."""

from __future__ import annotations

from typing import Any

import numpy as np

from aidc.federated import secure


class Aggregator:
    """FedAvg/FedProx aggregation of one round's answers: global += Σ weighted deltas / Σ weights (+ noise)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], *, noise_std: float = 0.0, seed: int = 0) -> None:
        self.shapes = shapes
        self.size = int(sum(int(np.prod(s)) for s in shapes.values()))
        self.noise_std = noise_std  # σ·C: the noise on the summed (clipped) updates
        self.gen = np.random.default_rng(seed)
        self.received: list[dict[str, Any]] = []  # kept for inspection: what the server was handed, all of it

    def add(self, answer: dict[str, Any]) -> None:
        self.received.append(answer)

    def step(
        self, global_state: dict[str, np.ndarray], corrections: list[np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """The next global weights from the answers added since the last step."""
        answers, self.received = self.received, []
        if not answers:
            return global_state
        if "masked" in answers[0]:
            total = np.zeros(self.size + 1, dtype=np.uint64)
            for a in answers:
                total = total + a["masked"]
            for c in corrections or []:
                total = total - c
            flat = secure.decode(total)
            summed, weight = flat[:-1], float(flat[-1])
        else:
            summed = np.zeros(self.size)
            for a in answers:
                summed = summed + np.concatenate([np.asarray(a["delta"][k]).ravel() for k in self.shapes])
            weight = float(sum(a["weight"] for a in answers))
        if self.noise_std > 0:
            summed = summed + self.gen.normal(0.0, self.noise_std, size=summed.shape)
        mean = summed / max(weight, 1e-12)
        out, at = {}, 0
        for k, shape in self.shapes.items():
            n = int(np.prod(shape))
            out[k] = (global_state[k].astype(np.float64) + mean[at : at + n].reshape(shape)).astype(np.float32)
            at += n
        return out
