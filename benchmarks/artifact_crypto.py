"""Cost of artifact encryption: MB/s storing and reading one artifact plain vs AES-256-GCM envelope-encrypted.

    .venv/bin/python benchmarks/artifact_crypto.py [--mb 100] [--repeat 3]

Two views, side by side: the cipher alone in memory, against the SHA-256 every put and read already computes,
and the local-directory store end to end (put_file / get_file, SHA-256 verification and fsync included),
encrypted against plain. Best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aidc.store.artifacts import EnvelopeCodec, FileArtifactStore
from aidc.store.artifacts.digests import CHUNK_SIZE
from aidc.store.artifacts.keyring import MasterKey, MasterKeyRing


class _Records:
    """In-memory key records for the codec-only view."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], bytes] = {}

    def read_key_record(self, hexdigest: str, record_id: str) -> bytes | None:
        return self.records.get((hexdigest, record_id))

    def key_record_uri(self, hexdigest: str, record_id: str) -> str:
        return f"memory:{record_id}"

    def uri_of(self, digest: str) -> str:
        return f"memory:{digest}"


def best(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.mb * 1_000_000
    data = os.urandom(size)
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, size, CHUNK_SIZE)]
    encrypted = EnvelopeCodec(MasterKeyRing([MasterKey.generate()]), encrypt=True)
    rows: list[tuple[str, float, float]] = []

    # codec only
    writer = encrypted.writer()
    sealed = list(writer.encode(chunks))
    records = _Records()
    record_id, record = writer.key_record("0" * 64)
    records.records[("0" * 64, record_id)] = record
    enc_s = best(args.repeat, lambda: sum(len(c) for c in encrypted.writer().encode(chunks)))
    dec_s = best(
        args.repeat, lambda: sum(len(c) for c in encrypted.decode(sealed, hexdigest="0" * 64, records=records))
    )

    def sha256() -> None:  # what every put and every verified read already pays, encrypted or not
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)

    sha_s = best(args.repeat, sha256)
    rows += [("encrypt vs SHA-256 (memory)", sha_s, enc_s), ("decrypt vs SHA-256 (memory)", sha_s, dec_s)]

    # the store, end to end, on a local directory
    with tempfile.TemporaryDirectory(dir=os.environ.get("AIDC_BENCH_DIR")) as tmp:
        root = Path(tmp)
        source = root / "artifact.bin"
        source.write_bytes(data)
        timings = {}
        for name, codec in (("plain", EnvelopeCodec(MasterKeyRing(), encrypt=False)), ("encrypted", encrypted)):
            store = FileArtifactStore(root / name, codec=codec)
            store.ensure_ready()

            def put(store: FileArtifactStore = store) -> None:
                ref = store.put_file(source)
                store.delete(ref.digest)  # so the next repeat writes again instead of finding it intact

            put_s = best(args.repeat, put)
            ref = store.put_file(source)
            get_s = best(args.repeat, lambda store=store, ref=ref: store.get_file(ref.digest, root / f"out-{name}.bin"))
            timings[name] = (put_s, get_s)
        rows += [
            ("store put_file (local dir)", timings["plain"][0], timings["encrypted"][0]),
            ("store get_file (local dir)", timings["plain"][1], timings["encrypted"][1]),
        ]

    mb = size / 1e6
    print(f"artifact: {args.mb} MB random bytes, chunk {CHUNK_SIZE // 1024} KiB, best of {args.repeat}")
    print("(in memory the baseline is hashing the same bytes; in the store it is the store without encryption)")
    print(f"{'operation':30} {'baseline MB/s':>14} {'encrypted MB/s':>15} {'encrypted/baseline':>19}")
    for label, plain_t, enc_t in rows:
        print(f"{label:30} {mb / plain_t:14.0f} {mb / enc_t:15.0f} {plain_t / enc_t:19.2f}")


if __name__ == "__main__":
    main()
