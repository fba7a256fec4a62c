"""A federated client: a Ray actor that reads the dataset itself, keeps only its own partition, trains locally and
answers with a model update — never with rows. (The actor restarts after a crash and draws its partition again.)"""

from __future__ import annotations

from typing import Any

import numpy as np

from aidc.federated import secure
from aidc.federated.partition import partition


class FederatedClient:
    def __init__(self, index: int, ctx: Any, data: dict[str, Any], arch: dict[str, Any], plan: dict[str, Any]) -> None:
        """``plan``: how the rows are partitioned (clients, scheme, alpha, seed) — the same on every client."""
        import torch

        from aidc.data.preprocess import load_arrays

        torch.set_num_threads(1)
        self.index, self.arch = index, arch
        arrays = load_arrays(ctx.get_artifact(data))
        mine = partition(arrays["y_train"], plan["clients"], plan["scheme"], alpha=plan["alpha"], seed=plan["seed"])[
            index
        ]
        self.x, self.y = arrays["x_train"][mine], arrays["y_train"][mine]
        del arrays  # the other clients' rows are not kept
        self._private, self.public = secure.keypair()

    def rows(self) -> int:
        return int(len(self.y))

    def classes(self) -> dict[int, int]:
        values, counts = np.unique(self.y, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def public_key(self) -> bytes:
        return self.public

    def train(self, global_state: dict[str, np.ndarray], task: dict[str, Any]) -> dict[str, Any]:
        """Local epochs from the global weights; the update (local − global), clipped when DP asks, and masked when
        secure aggregation is on. ``task["fail_after_epoch"]``: crash mid-round (a dropout drill)."""
        import torch
        from torch import nn

        from aidc.training.zoo import build_model

        torch.manual_seed(task["seed"] + 1000 * self.index)
        model = build_model(self.arch)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in global_state.items()})
        anchor = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.SGD(model.parameters(), lr=task["lr"], momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(self.x), torch.from_numpy(self.y)
        gen = torch.Generator().manual_seed(task["seed"] + self.index)
        for epoch in range(1, task["epochs"] + 1):
            model.train()
            order = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(order), task["batch_size"]):
                idx = order[i : i + task["batch_size"]]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx]), yt[idx])
                if task["mu"] > 0:  # FedProx: stay near the global model
                    loss = loss + task["mu"] / 2 * sum(
                        ((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True)
                    )
                loss.backward()
                optimizer.step()
            if task.get("fail_after_epoch") == epoch:  # the drill: gone mid-round, as a lost client is
                import ray.actor

                ray.actor.exit_actor()  # type: ignore[no-untyped-call]  # (expected by Ray: no crash report printed)
        state = model.state_dict()
        delta = {k: state[k].numpy().astype(np.float64) - global_state[k].astype(np.float64) for k in global_state}
        norm = float(np.sqrt(sum(float((d**2).sum()) for d in delta.values())))
        clip = task.get("clip")
        if clip is not None and norm > clip:
            delta = {k: d * (clip / norm) for k, d in delta.items()}
        weight = 1.0 if task["uniform_weights"] else float(len(self.y))
        if not task.get("secure"):
            return {"client": self.index, "weight": weight, "delta": {k: d * weight for k, d in delta.items()}}
        flat = np.concatenate([d.ravel() * weight for d in delta.values()] + [np.array([weight])])
        peers = {int(k): v for k, v in task["peers"].items()}
        return {"client": self.index, "masked": secure.masked(flat, self.index, self._private, peers, task["round"])}

    def unmask_for(self, dropped: dict[int, bytes], round_: int, size: int) -> np.ndarray:
        """The masks this client shared with the peers that dropped out this round (secure aggregation)."""
        return secure.correction(self.index, self._private, dropped, round_, size)
