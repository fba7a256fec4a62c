"""Dataset sources on S3 (the moto server): a CSV and an image folder read through fsspec with the artifact store's
endpoint, giving the same dataset as the local files, with the object's ETag and size as lineage."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from aidc.data.preprocess import load_arrays
from aidc.data.stage import DataConfig, DataStage
from aidc.pipeline.stage import StageContext
from aidc.store.artifacts import open_artifact_store


def _run(tmp_path: Path, source: str, endpoint: str | None = None, **settings: object) -> tuple[object, dict]:
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    ctx = StageContext(
        "run-1",
        "data",
        store,
        None,
        str(tmp_path / "data.log"),
        str(tmp_path),
        storage_options={"endpoint_url": endpoint} if endpoint else None,
    )
    out = DataStage().run(ctx, DataConfig.model_validate({"source": source, **settings}), {})
    return out["dataset"], load_arrays(store.get_bytes(out["splits"]["artifact"]))


def test_a_csv_and_an_image_folder_on_s3_read_like_local_files(moto_s3_url: str, tmp_path: Path) -> None:
    import boto3
    from sklearn.datasets import load_breast_cancer, load_digits

    s3 = boto3.client("s3", endpoint_url=moto_s3_url)
    bucket = f"data-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    csv = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv, index=False)
    s3.upload_file(str(csv), bucket, "tables/cancer.csv")
    remote, remote_arrays = _run(tmp_path, f"s3://{bucket}/tables/cancer.csv", moto_s3_url, columns={"label": "target"})
    local, _ = _run(tmp_path, str(csv), columns={"label": "target"})
    assert remote.fingerprint == local.fingerprint  # type: ignore[attr-defined]
    assert remote_arrays["x_train"].shape[1] == 30
    lineage = remote.stats["lineage"]  # type: ignore[attr-defined]
    head = s3.head_object(Bucket=bucket, Key="tables/cancer.csv")
    assert lineage == {
        "uri": f"s3://{bucket}/tables/cancer.csv",
        "etag": head["ETag"].strip('"'),
        "size": csv.stat().st_size,
    }

    digits = load_digits()
    for c in (3, 8):
        for i, img in enumerate(digits.images[digits.target == c][:10]):
            png = tmp_path / f"{c}-{i}.png"
            Image.fromarray((img * 255 / 16).astype(np.uint8)).save(png)
            s3.upload_file(str(png), bucket, f"images/class-{c}/{i}.png")
    images, arrays = _run(tmp_path, f"s3://{bucket}/images", moto_s3_url, resize=[12, 12], augment={"copies": 0})
    assert images.schema["label"]["names"] == ["class-3", "class-8"]  # type: ignore[attr-defined]
    assert arrays["x_train"].shape[1:] == (1, 12, 12)
    assert images.stats["lineage"]["files"] == 20  # type: ignore[attr-defined]


def test_a_text_folder_on_s3_reads_like_the_local_one(moto_s3_url: str, tmp_path: Path) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3_url)
    bucket = f"text-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    local = tmp_path / "notes"
    for topic, words in (("rain", "wet grey cold drizzle"), ("sun", "warm bright dry clear")):
        (local / topic).mkdir(parents=True)
        for i in range(12):
            text = f"{words.split()[i % 4]} day number {i} {words}"
            (local / topic / f"{i:02d}.txt").write_text(text)
            s3.put_object(Bucket=bucket, Key=f"notes/{topic}/{i:02d}.txt", Body=text.encode())
    settings = {"text": {"tokenize": "words", "length": 8}}
    remote, remote_arrays = _run(tmp_path, f"s3://{bucket}/notes", moto_s3_url, **settings)
    here, arrays = _run(tmp_path, str(local), **settings)
    assert remote.fingerprint == here.fingerprint  # type: ignore[attr-defined]
    assert remote.schema["label"]["names"] == ["rain", "sun"]  # type: ignore[attr-defined]
    assert remote_arrays["x_train"].dtype == np.int64 and remote.stats["lineage"]["files"] == 24  # type: ignore[attr-defined]
