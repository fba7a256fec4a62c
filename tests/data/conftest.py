"""Running the data stage on its own: a real artifact store in a temporary folder, no Ray, no metadata store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.data.preprocess import load_arrays
from aidc.data.stage import DataConfig, DataStage
from aidc.pipeline.stage import StageContext
from aidc.store.artifacts import open_artifact_store

RunData = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture
def run_data(tmp_path: Path) -> RunData:
    """run_data(source=..., **settings) → (the DatasetRegistration, the split arrays)."""
    store = open_artifact_store((tmp_path / "artifacts").as_uri())

    def run(
        *,
        spec_dir: str | None = None,
        roots: tuple[str, ...] | None = None,
        storage_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> tuple[Any, dict[str, Any]]:
        ctx = StageContext(
            "run-1",
            "data",
            store,
            None,
            str(tmp_path / "data.log"),
            str(tmp_path),
            data_roots=roots,
            spec_dir=spec_dir,
            storage_options=storage_options,
        )
        out = DataStage().run(ctx, DataConfig.model_validate(settings), {})
        return out["dataset"], load_arrays(store.get_bytes(out["splits"]["artifact"]))

    return run
