"""The federated stage: K clients (Ray actors, each with a private partition) train locally; the server aggregates
their updates by FedAvg or FedProx, round by round, surviving clients that drop out mid-round, optionally with
differential privacy and secure aggregation. The global model comes out as a checkpoint, like the train stage's."""

from __future__ import annotations

import io
import math
import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aidc.errors import StageFailed
from aidc.pipeline.stage import Stage, StageContext


class Partition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheme: Literal["iid", "dirichlet"] = Field("dirichlet", description="dirichlet: label skew across clients")
    alpha: float = Field(0.5, gt=0, le=1000, description="Dirichlet concentration: smaller is more skewed")


class Privacy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clip: float = Field(1.0, gt=0, description="largest L2 norm of a client's update")
    noise_multiplier: float = Field(1.0, ge=0, description="Gaussian noise σ, in units of clip, on the sum")
    delta: float = Field(1e-5, gt=0, lt=1, description="δ of the (ε, δ) guarantee reported")


class FederatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Literal["cnn", "mlp"] = "cnn"
    width: int | None = Field(None, ge=4, le=4096)
    dropout: float = Field(0.1, ge=0, lt=1, description="the network's dropout layer (not client dropouts)")
    clients: int = Field(5, ge=2, le=1000)
    partition: Partition = Field(default_factory=Partition)
    algorithm: Literal["fedavg", "fedprox"] = "fedavg"
    mu: float = Field(0.01, ge=0, description="FedProx proximal weight")
    rounds: int = Field(10, ge=1, le=10_000)
    fraction: float = Field(1.0, gt=0, le=1, description="share of clients asked each round")
    local_epochs: int = Field(2, ge=1, le=1000)
    lr: float = Field(0.05, gt=0, le=10, description="clients' SGD learning rate (momentum 0.9)")
    batch_size: int = Field(32, ge=1)
    client_drop_rate: float = Field(
        0.0, ge=0, lt=1, description="drill: chance a sampled client crashes mid-round (the round goes on without it)"
    )
    privacy: Privacy | None = Field(None, description="differential privacy: clipped updates plus Gaussian noise")
    secure_aggregation: bool = Field(False, description="pairwise masks: the server sees only the sum")
    centralised: bool = Field(True, description="also train centrally on the same rows, for the report")
    client_cpus: float = Field(0.25, gt=0, le=64, description="CPUs each client actor reserves")
    round_timeout_s: float = Field(600.0, gt=0, description="a client slower than this is counted as dropped")
    rejoin_timeout_s: float = Field(
        60.0, ge=0, description="how long a round waits for a sampled client that is rejoining after it left"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _prox(self) -> FederatedConfig:
        if self.algorithm == "fedavg" and "mu" in self.model_fields_set and self.mu:
            raise ValueError("mu is FedProx's: set algorithm: fedprox, or leave mu out")
        return self


def _sampled(cfg: FederatedConfig, round_: int) -> list[int]:
    """Which clients are asked this round."""
    gen = np.random.default_rng([cfg.seed, round_])
    k = max(1, math.ceil(cfg.fraction * cfg.clients))
    return sorted(int(i) for i in gen.choice(cfg.clients, size=k, replace=False))


def _crashing(cfg: FederatedConfig, round_: int, present: list[int]) -> set[int]:
    """Which of the clients present this round the dropout drill makes crash mid-round (never all of them)."""
    gen = np.random.default_rng([cfg.seed, round_, 1])
    crash = {i for i in present if gen.random() < cfg.client_drop_rate}
    if present and len(crash) == len(present):  # a drill that leaves nobody is no longer a dropout drill
        crash.discard(present[0])
    return crash


def _present(clients: list[Any], chosen: list[int], wait_s: float, rejoin: Any) -> list[int]:
    """The chosen clients that answer a call within ``wait_s``. A client that left (its actor is gone) rejoins as a
    new actor (``rejoin(i)``), which draws its partition again; one Ray is restarting after a crash is waited for."""
    import ray

    deadline = time.monotonic() + wait_s
    present = []
    for i in chosen:
        rejoined = False
        while True:
            try:
                ray.get(clients[i].rows.remote(), timeout=max(deadline - time.monotonic(), 0.01))
                present.append(i)
                break
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)  # (polling a restarting actor: it refuses calls until its __init__ is done)
            except ray.exceptions.RayActorError:
                if rejoined:
                    break
                clients[i], rejoined = rejoin(i), True
            except ray.exceptions.GetTimeoutError:
                break
    return present


def _central(ctx: Any, data: dict[str, Any], arch: dict[str, Any], cfg: dict[str, Any]) -> list[float]:
    """The reference: the same model and optimiser on all clients' rows together, test accuracy after each round's
    worth of epochs. A task of its own: the rows never enter the aggregating process."""
    import torch
    from torch import nn

    from aidc.data.preprocess import load_arrays
    from aidc.training.zoo import build_model

    torch.set_num_threads(1)
    torch.manual_seed(cfg["seed"])
    a = load_arrays(ctx.get_artifact(data))
    model = build_model(arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    xt, yt = torch.from_numpy(a["x_train"]), torch.from_numpy(a["y_train"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    accuracy = []
    for _ in range(cfg["rounds"]):
        for _ in range(cfg["local_epochs"]):
            model.train()
            order = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(order), cfg["batch_size"]):
                idx = order[i : i + cfg["batch_size"]]
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()  # type: ignore[no-untyped-call]
                optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy.append(float((model(torch.from_numpy(a["x_test"])).argmax(1).numpy() == a["y_test"]).mean()))
    return accuracy


def _test_split(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Only the held-out test rows, which the server scores the global model on (an .npz member is read on access)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return npz["x_test"], npz["y_test"]


class FederatedStage(Stage):
    kind = "federated"
    Config = FederatedConfig
    inputs = {"data": "train/val/test arrays from a data stage (each client keeps only its own training rows)"}
    outputs = {
        "checkpoint": "the global model after the last round",
        "model": "the architecture",
        "summary": "accuracy per round, clients and dropouts, privacy spent, the centralised reference",
    }
    num_cpus = 0  # the clients hold the CPUs

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        import ray
        import torch

        from aidc.federated.aggregate import Aggregator
        from aidc.federated.client import FederatedClient
        from aidc.training.zoo import build_model

        cfg: FederatedConfig = config
        x_test, y_test = _test_split(ctx.get_artifact(inputs["data"]))
        with np.load(io.BytesIO(ctx.get_artifact(inputs["data"])), allow_pickle=False) as npz:
            classes = int(max(npz["y_train"].max(), y_test.max())) + 1  # labels only: to size the head
        arch = {
            "model": cfg.model,
            "input_shape": list(x_test.shape[1:]),
            "classes": classes,
            "width": cfg.width,
            "dropout": cfg.dropout,
        }
        torch.manual_seed(cfg.seed)
        model = build_model(arch)
        state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        plan = {"clients": cfg.clients, "scheme": cfg.partition.scheme, "alpha": cfg.partition.alpha, "seed": cfg.seed}
        actor = ray.remote(FederatedClient).options(num_cpus=cfg.client_cpus, max_restarts=-1, max_task_retries=0)

        def join(i: int) -> Any:
            return actor.remote(i, ctx, inputs["data"], arch, plan)

        clients: list[Any] = [join(i) for i in range(cfg.clients)]
        central_task = None
        if cfg.centralised:
            central_task = (
                ray.remote(_central)
                .options(num_cpus=cfg.client_cpus)
                .remote(
                    ctx,
                    inputs["data"],
                    arch,
                    cfg.model_dump(include={"seed", "lr", "rounds", "local_epochs", "batch_size"}),
                )
            )
        rows = ray.get([c.rows.remote() for c in clients])
        skew = ray.get([c.classes.remote() for c in clients])
        ctx.log(
            f"{cfg.algorithm} over {cfg.clients} clients ({cfg.partition.scheme}"
            f"{f' α={cfg.partition.alpha}' if cfg.partition.scheme == 'dirichlet' else ''}), rows per client {rows}"
        )
        privacy = cfg.privacy
        aggregator = Aggregator(
            {k: v.shape for k, v in state.items()},
            noise_std=privacy.noise_multiplier * privacy.clip if privacy else 0.0,
            seed=cfg.seed,
        )
        accountant = None
        if privacy is not None and privacy.noise_multiplier > 0:
            from opacus.accountants import RDPAccountant

            accountant = RDPAccountant()
        history: list[dict[str, Any]] = []
        ctx.progress("rounds", 0, cfg.rounds, force=True)
        for round_ in range(1, cfg.rounds + 1):
            began = time.perf_counter()
            chosen = _sampled(cfg, round_)
            present = _present(clients, chosen, cfg.rejoin_timeout_s, join)
            offline = [i for i in chosen if i not in present]  # not back in time: missing from this round
            crash = _crashing(cfg, round_, present)
            peers: dict[int, bytes] = {}
            if cfg.secure_aggregation:  # the key exchange
                peers = dict(zip(present, ray.get([clients[i].public_key.remote() for i in present]), strict=True))
            task = {
                "round": round_,
                "seed": cfg.seed * 100_003 + round_,
                "epochs": cfg.local_epochs,
                "lr": cfg.lr,
                "batch_size": cfg.batch_size,
                "mu": cfg.mu if cfg.algorithm == "fedprox" else 0.0,
                "clip": privacy.clip if privacy else None,
                "uniform_weights": privacy is not None,  # DP: each client counts once, so one client moves the sum ≤ C
                "secure": cfg.secure_aggregation,
                "peers": peers,
            }
            shared = ray.put(state)
            refs = {
                clients[i].train.remote(shared, {**task, "fail_after_epoch": 1 if i in crash else None}): i
                for i in present
            }
            done, late = ray.wait(list(refs), num_returns=len(refs), timeout=cfg.round_timeout_s)
            for ref in late:
                ray.cancel(ref, force=True)
            answered, dropped = [], [refs[r] for r in late] + offline
            for ref in done:
                try:
                    aggregator.add(ray.get(ref))
                    answered.append(refs[ref])
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    dropped.append(refs[ref])  # the client died mid-round: the round goes on without it
            if not answered:
                raise StageFailed(
                    f"round {round_}: no client answered ({len(dropped)} dropped)",
                    stage=ctx.stage,
                    run_id=ctx.run_id,
                    cause="every sampled client dropped out",
                    hint="check the client actors' logs; raise round_timeout_s if they are only slow",
                )
            corrections = []
            if cfg.secure_aggregation and dropped:  # survivors give up the masks they shared with the lost clients
                gone = {i: peers[i] for i in dropped if i in peers}
                corrections = ray.get(
                    [clients[i].unmask_for.remote(gone, round_, aggregator.size + 1) for i in answered]
                )
            state = aggregator.step(state, corrections)
            if accountant is not None and privacy is not None:
                accountant.step(noise_multiplier=privacy.noise_multiplier, sample_rate=len(chosen) / cfg.clients)
            model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            model.eval()
            with torch.no_grad():
                accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
            seconds = time.perf_counter() - began
            history.append(
                {
                    "round": round_,
                    "sampled": chosen,
                    "answered": sorted(answered),
                    "dropped": sorted(dropped),
                    "accuracy": accuracy,
                    "seconds": seconds,
                }
            )
            ctx.metric("fed_test_accuracy", round_, accuracy)
            ctx.progress("rounds", round_, cfg.rounds, test_accuracy=round(accuracy, 4))
            if dropped:
                ctx.log(f"round {round_}: clients {sorted(dropped)} dropped out; aggregated {len(answered)} updates")
        central = ray.get(central_task) if central_task is not None else None
        epsilon = accountant.get_epsilon(privacy.delta) if accountant is not None and privacy is not None else None
        for c in clients:
            ray.kill(c)
        blob = io.BytesIO()
        torch.save({"model": model.state_dict(), "arch": arch, "epoch": cfg.rounds}, blob)
        checkpoint = ctx.put_artifact(blob.getvalue(), kind="checkpoint", name="federated.pt")
        summary = {
            "algorithm": cfg.algorithm,
            "clients": cfg.clients,
            "partition": f"{cfg.partition.scheme}"
            + (f" α={cfg.partition.alpha:g}" if cfg.partition.scheme == "dirichlet" else ""),
            "rows_per_client": rows,
            "classes_per_client": [{str(k): v for k, v in s.items()} for s in skew],
            "rounds": history,
            "accuracy": history[-1]["accuracy"],
            "centralised": {"accuracy": central[-1], "per_round": central} if central else None,
            "privacy": {
                "epsilon": epsilon,
                "delta": privacy.delta,
                "clip": privacy.clip,
                "noise_multiplier": privacy.noise_multiplier,
                "accountant": "opacus RDP",
            }
            if privacy
            else None,
            "secure_aggregation": cfg.secure_aggregation,
            "round_seconds_mean": float(np.mean([r["seconds"] for r in history])),
        }
        ctx.log(
            f"final test accuracy {summary['accuracy']:.4f}"
            + (f" (centralised {central[-1]:.4f})" if central else "")
            + (f"; ε = {epsilon:.2f} at δ = {privacy.delta:g}" if epsilon is not None and privacy else "")
        )
        return {"checkpoint": checkpoint, "model": arch, "summary": summary}
