"""Benchmarks of tglake against the original design, measured in the same run."""
