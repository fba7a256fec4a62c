"""Jobs: pipelines submitted to the server, queued under per-project quotas and run by its scheduler."""
