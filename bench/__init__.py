"""Latency, capacity, efficiency and codec benchmarks (see shared/docs/benchmarks.md)."""
