"""The deploy stage: the registered model version as a deployment (replicas behind one router URL), checked against offline answers.

The stage is a client of deployments (serving/deployments.py), through ``RunDeployments``, which the pipeline
runner hands to it and which settles what the run deployed when the command ends:

- with ``aidc run --serve``: deployment ``name`` is created — or, when it already serves another version,
  updated: the new version goes in as a canary, is checked on its own (version-pinned requests), then
  promoted — and left running on the serving Ray cluster, which outlives the command;
- without ``--serve``: the same checks run on a deployment on the command's own Ray (the one training ran on),
  deleted when the command ends (named ``name`` if free, else ``name-<run id>`` so a deployment someone is
  using is never touched);
- a run that fails undoes what it did: a deployment it created is deleted, an update is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import StageFailed
from aidc.pipeline.stage import Stage, StageContext

if TYPE_CHECKING:
    from aidc.security.roles import Access
    from aidc.security.service import Security
    from aidc.serving.deployments import Deployments
    from aidc.store.metadata import MetadataStore


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9_.-]{0,62}$", description="deployment name (default: the registered name)"
    )
    replicas: int = Field(1, ge=1, le=64, description="server processes of the version")
    cpus: float = Field(0.5, gt=0, description="CPUs Ray reserves per replica")
    gpus: float = Field(0, ge=0, description="GPUs Ray reserves per replica (CUDA when ONNX Runtime has it)")
    host: str = "127.0.0.1"
    timeout: float = Field(180, gt=0, description="seconds to wait for replicas to be ready")
    batch: int = Field(8, ge=1, le=1024, description="test images per request when checking the deployment")
    min_agreement: float = Field(
        1.0, ge=0, le=1, description="share of live answers that must equal offline evaluation"
    )
    sample: int = Field(8, ge=0, le=100, description="live predictions kept for the run summary")


@dataclass
class _Deployed:
    name: str
    url: str
    deployment_id: int
    state: str  # created | canary | promoted | reused


class RunDeployments:
    """The deployments one pipeline run makes: kept after a successful ``--serve`` run, otherwise undone.

    With ``serve`` they go on the serving Ray cluster, which outlives the command; without, on the command's
    own Ray (already running for training: no second Ray to start and stop), and are deleted before it ends.
    """

    def __init__(
        self,
        deployments: Deployments,
        store: MetadataStore,
        security: Security,
        access: Access,
        run_id: str,
        *,
        serve: bool,
        project: str = "default",
    ) -> None:
        """``deployments``: the serving cluster's with ``serve``, else ones on the command's own Ray; each change is
        audited as ``access``, the caller that runs the pipeline; what it deploys is the run's ``project``'s."""
        self.project = project
        self.deployments = deployments
        self.store, self.security, self.access = store, security, access
        self.run_id = run_id
        self.serve = serve
        self.deployed: list[_Deployed] = []

    def _audited(
        self, action: str, target: str, change: Callable[[], dict[str, Any]], **details: Any
    ) -> dict[str, Any]:
        with self.security.audited(self.access, f"deployments.{action}", target, run_id=self.run_id, **details):
            return change()

    def deploy(self, ref: str, name: str, config: DeployConfig) -> dict[str, Any]:
        """Serve model version ``ref`` as deployment ``name`` (or its stand-in); returns the deployment."""
        serving = self.deployments
        name_of, _, number = ref.partition(":")
        version = self.store.get_model_version(name_of, int(number) if number else None, project=self.project)
        existing = next((d for d in serving.list(project=self.project) if d["name"] == name), None)
        options: dict[str, Any] = {
            "replicas": config.replicas,
            "cpus": config.cpus,
            "gpus": config.gpus,
            "host": config.host,
            "timeout": config.timeout,
        }
        if existing is not None and not self.serve:
            name = f"{name}-{self.run_id}"[:63]  # someone's deployment: check on a stand-in, leave theirs alone
            existing = None
        if existing is not None and not existing["managed"]:
            # a single endpoint an older run left: deployments replace those
            self._audited("delete", name, lambda: serving.delete(name, project=self.project))
            existing = None
        if existing is None:
            d = self._audited(
                "deploy",
                ref,
                lambda: serving.deploy(version, name=name, project=self.project, **options),
                name=name,
                replicas=config.replicas,
            )
            state = "created"
        elif existing["stable"] == ref and existing["canary"] is None:
            d, state = existing, "reused"
            if not existing["live"]:  # its record says it serves, but nothing answers: bring it back first
                d = self._audited(
                    "restart", name, lambda: serving.restart(name, timeout=config.timeout, project=self.project)
                )
        else:
            d = self._audited(
                "deploy",
                ref,
                lambda: serving.deploy(version, name=name, canary=50.0, timeout=config.timeout, project=self.project),
                name=name,
                canary=50.0,
            )
            state = "canary"
        self.deployed.append(_Deployed(d["name"], d["url"], d["id"], state))
        return d

    def checked(self, name: str) -> dict[str, Any]:
        """The stage's checks passed: a canary becomes the stable version."""
        entry = next(e for e in self.deployed if e.name == name)
        if entry.state == "canary":
            self._audited("promote", name, lambda: self.deployments.promote(name, project=self.project))
            entry.state = "promoted"
        return self.deployments.describe(self.store.find_deployment(name, project=self.project))

    def settle(self, *, keep: bool) -> list[dict[str, Any]]:
        """At the command's end: what stays up (``keep``), or everything undone. Returns what is serving."""
        if keep:
            return [{"name": e.name, "url": e.url, "deployment_id": e.deployment_id} for e in self.deployed]
        for entry in reversed(self.deployed):
            if entry.state == "created":
                self._audited("delete", entry.name, partial(self.deployments.delete, entry.name, project=self.project))
            elif entry.state in ("canary", "promoted"):
                self._audited(
                    "rollback", entry.name, partial(self.deployments.rollback, entry.name, project=self.project)
                )
        self.deployed.clear()
        return []


class NoDeployments:
    """What a run that may not deploy gets instead of RunDeployments: its deploy stages say why and deploy nothing
    (a server job's process holds no serving rights; what it registered is deployed with ``aidc deploy``)."""

    def __init__(self, why: str, hint: str) -> None:
        self.why, self.hint = why, hint

    def settle(self, *, keep: bool) -> list[dict[str, Any]]:
        return []


class DeployStage(Stage):
    kind = "deploy"
    Config = DeployConfig
    inputs = {
        "model": "a register stage's model version",
        "onnx": "the ONNX file",
        "data": "arrays to check with",
        "predictions": "offline predictions from an evaluate stage",
        "samples": "a language model's greedy generations from an evaluate_lm stage (in place of the three above)",
    }
    # an ONNX model needs onnx, data and predictions; a register_lm version needs samples instead
    optional_inputs = frozenset({"onnx", "data", "predictions", "samples"})
    outputs = {"deployment": "the deployment serving the version", "checks": "live answers vs offline evaluation"}
    cacheable = False  # a deployment is running processes, not a result to reuse
    # In the command's process: it drives the serving Ray cluster (a driver joins one cluster at a time), and
    # the deployment's replicas must outlive this command's own Ray.
    in_process = True

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.data.preprocess import load_arrays
        from aidc.serving.endpoint import EndpointClient

        cfg: DeployConfig = config
        deployments: RunDeployments | NoDeployments | None = getattr(ctx, "deployments", None)
        if deployments is None:
            raise StageFailed(
                "the deploy stage needs the pipeline runner's deployments",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="no RunDeployments on the stage context",
                hint="run deploy stages through `aidc run`",
            )
        model = inputs["model"]
        if isinstance(deployments, NoDeployments):
            ctx.log(f"not deploying {model['ref']}: {deployments.why}; {deployments.hint}")
            return {"deployment": None, "checks": {"skipped": deployments.why}}
        if inputs.get("samples") is not None:
            return self._run_lm(ctx, cfg, deployments, model, inputs["samples"])
        missing = [k for k in ("onnx", "data", "predictions") if k not in inputs]
        if missing:
            raise StageFailed(
                f"the deploy stage needs input(s) {', '.join(missing)} to check an ONNX model "
                "(or `samples` from an evaluate_lm stage for a language model)",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="deploy stage inputs",
                hint="wire `inputs: {model: register.model, onnx: export.onnx, data: data.arrays, "
                "predictions: evaluate.predictions}`",
            )
        if inputs.get("onnx") is None:
            ctx.log(
                f"not deploying {model['ref']}: it has no ONNX model (the export stage could not export it; see its "
                "log); the checkpoint is registered"
            )
            return {"deployment": None, "checks": {"skipped": "no ONNX model to serve"}}
        registered, _, version = model["ref"].partition(":")
        ctx.progress("deploy", 0, 1, force=True, step="starting replicas")
        d = deployments.deploy(model["ref"], cfg.name or registered, cfg)
        name, url = d["name"], d["url"]
        ctx.log(f"deployment {name} at {url} serving {model['ref']} on {cfg.replicas} replica(s)")
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        offline = inputs["predictions"]
        x, y = data[f"x_{offline['split']}"], data[f"y_{offline['split']}"]
        regression = offline.get("task") == "regression"
        answers = []
        with EndpointClient(url) as client:
            for i in range(0, len(x), cfg.batch):  # pinned to the version: a canary is checked on its own
                out = client.infer(name, x[i : i + cfg.batch], version=version)
                answers.append(out.reshape(len(out), -1) if regression else out.argmax(axis=1))
                ctx.progress("deploy", min(i + cfg.batch, len(x)), len(x), step="checking answers")
        live = np.concatenate(answers) if answers else np.zeros(0, dtype=np.int64)
        expected = np.asarray(offline["predicted"])
        if regression:  # the same number, up to float noise between ONNX Runtime and PyTorch
            same = np.isclose(live, expected.reshape(live.shape), rtol=1e-3, atol=1e-4).all(axis=1)
            agreement = float(same.mean()) if len(live) else 1.0
            checks = {
                "agreement": agreement,
                "requests": len(answers),
                "rows": int(len(x)),
                "mae": float(np.abs(live - y.reshape(live.shape)).mean()) if len(live) else 0.0,
                "sample": [
                    {"label": float(t), "predicted": float(p)}
                    for t, p in zip(y[: cfg.sample, 0], live[: cfg.sample, 0], strict=False)
                ],
            }
        else:
            agreement = float((live == expected).mean()) if len(live) else 1.0
            checks = {
                "agreement": agreement,
                "requests": len(answers),
                "images": int(len(x)),
                "accuracy": float((live == y).mean()) if len(live) else 0.0,
                "sample": [
                    {"label": int(t), "predicted": int(p)}
                    for t, p in zip(y[: cfg.sample], live[: cfg.sample], strict=False)
                ],
            }
        if agreement < cfg.min_agreement:
            raise StageFailed(
                f"the deployment agrees with offline evaluation on {agreement:.2%} of images "
                f"(< {cfg.min_agreement:.2%})",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="live answers differ from offline predictions",
                hint=f"`aidc deployments show {name}` lists its replicas and their logs",
            )
        ctx.log(f"deployment agrees with offline evaluation on {agreement:.2%} of {len(x)} images")
        return _checked(deployments, name, url, d, model, checks)

    def _run_lm(
        self, ctx: StageContext, cfg: DeployConfig, deployments: RunDeployments, model: dict[str, Any], samples: Any
    ) -> dict[str, Any]:
        """A language model: deploy it, then each evaluate_lm prompt's greedy text through the deployment (pinned
        to the version) must equal the one generated offline."""
        import httpx

        registered, _, version = model["ref"].partition(":")
        ctx.progress("deploy", 0, 1, force=True, step="starting replicas")
        d = deployments.deploy(model["ref"], cfg.name or registered, cfg)
        name, url = d["name"], d["url"]
        ctx.log(f"deployment {name} at {url} serving {model['ref']} on {cfg.replicas} replica(s) (text generation)")
        compared = []
        with httpx.Client(base_url=url, timeout=cfg.timeout) as http:
            for i, s in enumerate(samples):
                if "max_new_tokens" not in s:
                    raise StageFailed(
                        "the samples input does not say how many tokens each generation had (max_new_tokens)",
                        stage=ctx.stage,
                        run_id=ctx.run_id,
                        cause="samples from an older evaluate_lm",
                        hint="run the evaluate_lm stage again (aidc run --no-cache)",
                    )
                body = {
                    "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [s["prompt"]]}],
                    "parameters": {"max_tokens": int(s["max_new_tokens"]), "temperature": 0},
                }
                answer = http.post(f"/v2/models/{name}/versions/{version}/infer", json=body)
                if answer.status_code != 200:
                    raise StageFailed(
                        f"the deployment answered {answer.status_code} to prompt {s['prompt']!r}: {answer.text[:300]}",
                        stage=ctx.stage,
                        run_id=ctx.run_id,
                        cause="a generation request failed",
                        hint=f"`aidc deployments show {name}` lists its replicas and their logs",
                    )
                live = answer.json()["outputs"][0]["data"][0]
                compared.append({"prompt": s["prompt"], "offline": s["greedy"], "live": live})
                ctx.progress("deploy", i + 1, len(samples), step="checking generations")
        agreement = sum(c["offline"] == c["live"] for c in compared) / len(compared) if compared else 1.0
        if agreement < cfg.min_agreement:
            raise StageFailed(
                f"the deployment's greedy text equals offline generation for {agreement:.2%} of prompts "
                f"(< {cfg.min_agreement:.2%})",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="live generations differ from evaluate_lm's",
                hint=f"`aidc deployments show {name}` lists its replicas and their logs",
            )
        ctx.log(f"deployment's greedy text equals offline generation for {agreement:.2%} of {len(compared)} prompts")
        checks = {
            "agreement": agreement,
            "requests": len(compared),
            "prompts": len(compared),
            "sample": compared[: cfg.sample],
        }
        return _checked(deployments, name, url, d, model, checks)


def _checked(
    deployments: RunDeployments, name: str, url: str, d: dict[str, Any], model: dict[str, Any], checks: dict[str, Any]
) -> dict[str, Any]:
    """The deploy stage's outputs once its checks passed (a canary becomes the stable version)."""
    details = deployments.checked(name)
    return {
        "deployment": {
            "name": name,
            "url": url,
            "deployment_id": d["id"],
            "model_version": model["ref"],
            "replicas": details["replicas"],
        },
        "checks": checks,
    }
