"""Reproducible speed benchmarks; each writes its numbers to ``benchmarks/results/<name>.json``."""
