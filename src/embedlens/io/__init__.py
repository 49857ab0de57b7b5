"""Runs on disk: run records and reading a run back, folders embedlens owns and locks, and
the export/import formats other tools read."""
