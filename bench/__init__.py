"""Load generators and benchmarks that print figures (see docs/benchmarks.md)."""
