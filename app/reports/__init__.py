"""The supervisors' reports: how the calls of a period went, and what the phone tree misses."""
