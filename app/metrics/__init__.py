"""Live metrics for Prometheus: GET /metrics, the counters the services bump, request latency."""
