"""Serving runtime of the API: middleware, micro-batching, worker processes, the recorder."""
