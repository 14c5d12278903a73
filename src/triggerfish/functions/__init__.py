"""Functions: Lambda-compatible handlers run in worker processes, or HTTP endpoints."""
