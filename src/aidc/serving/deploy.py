"""The deploy stage: the ONNX model behind an Open Inference Protocol v2 endpoint, checked against offline answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import StageFailed
from aidc.pipeline.stage import DeploymentRegistration, Stage, StageContext


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_.-]{0,62}$", description="served model name (default: the registered name)")
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    batch: int = Field(8, ge=1, le=1024, description="test images per request when checking the endpoint")
    min_agreement: float = Field(1.0, ge=0, le=1, description="share of endpoint answers that must equal offline evaluation")
    sample: int = Field(8, ge=0, le=100, description="live predictions kept for the run summary")


class DeployStage(Stage):
    kind = "deploy"
    Config = DeployConfig
    inputs = {"model": "a register stage's model version", "onnx": "the ONNX file", "data": "arrays to check with",
              "predictions": "offline predictions from an evaluate stage"}
    outputs = {"deployment": "the running endpoint", "checks": "endpoint answers vs offline evaluation"}
    cacheable = False  # a deployment is a running process, not a result to reuse
    in_process = True  # its endpoint must outlive this command's Ray when --serve keeps it up

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.data.preprocess import load_arrays
        from aidc.serving.endpoint import EndpointClient, start_endpoint, stop_endpoint

        cfg: DeployConfig = config
        model = inputs["model"]
        registered, _, version = model["ref"].partition(":")
        name = cfg.name or registered
        served = Path(ctx.home) / "deployments" / ctx.run_id / name
        served.mkdir(parents=True, exist_ok=True)
        onnx_path = ctx.artifact_file(inputs["onnx"], served / "model.onnx")
        ctx.progress("deploy", 0, 1, force=True, step="starting endpoint")
        endpoint = start_endpoint(onnx_path, name, version, host=cfg.host, port=cfg.port, log_path=served / "server.log")
        ctx.log(f"endpoint {endpoint.url} (pid {endpoint.pid}) serving {model['ref']}")
        try:
            data = load_arrays(ctx.get_artifact(inputs["data"]))
            offline = inputs["predictions"]
            x, y = data[f"x_{offline['split']}"], data[f"y_{offline['split']}"]
            answers = []
            with EndpointClient(endpoint.url) as client:
                for i in range(0, len(x), cfg.batch):
                    answers.append(client.infer(name, x[i:i + cfg.batch], version=version).argmax(axis=1))
                    ctx.progress("deploy", min(i + cfg.batch, len(x)), len(x), step="checking answers")
            live = np.concatenate(answers) if answers else np.zeros(0, dtype=np.int64)
            agreement = float((live == np.asarray(offline["predicted"])).mean()) if len(live) else 1.0
            checks = {"agreement": agreement, "requests": len(answers), "images": int(len(x)),
                      "accuracy": float((live == y).mean()) if len(live) else 0.0,
                      "sample": [{"label": int(t), "predicted": int(p)} for t, p in zip(y[:cfg.sample], live[:cfg.sample])]}
            if agreement < cfg.min_agreement:
                raise StageFailed(f"the endpoint agrees with offline evaluation on {agreement:.2%} of images "
                                  f"(< {cfg.min_agreement:.2%})", stage=ctx.stage, run_id=ctx.run_id,
                                  cause="endpoint answers differ from offline predictions",
                                  hint=f"see the server log {served / 'server.log'}")
        except BaseException:
            stop_endpoint(endpoint.pid)
            raise
        ctx.log(f"endpoint agrees with offline evaluation on {agreement:.2%} of {len(x)} images")
        return {"deployment": DeploymentRegistration(name, int(model["model_version_id"]), endpoint.url, endpoint.pid, checks),
                "checks": checks}
