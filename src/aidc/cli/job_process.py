"""The entry point of one job's process (`python -m aidc.cli.job_process JOB_ID`), started by the server's scheduler."""

from __future__ import annotations

import sys


def main(job_id: str) -> int:
    from aidc.jobs.worker import run_job
    from aidc.platform import Platform

    platform = Platform()
    try:
        return run_job(job_id, platform.metadata, platform.security, platform.runs.runner)
    finally:
        platform.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
