"""Benchmarks: screen-pop latency, lifecycle throughput, connections, and the floor they share."""
