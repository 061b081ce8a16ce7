"""`make bench`: one run, one table (also written to docs/benchmarks.md)."""
