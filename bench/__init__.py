"""Benchmarks against the real engine; run them all with ``bench/run``."""
