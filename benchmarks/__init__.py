"""One benchmark script per system: `python -m benchmarks.<system>` or `make bench-<system>`."""
