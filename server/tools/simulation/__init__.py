"""A whole shift simulated through the real paths, with faults, and reconciled (issue 9)."""
