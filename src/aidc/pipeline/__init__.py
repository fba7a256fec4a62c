"""Pipelines: the spec, the Stage protocol and the runner that executes stages on Ray, cached and resumable."""
