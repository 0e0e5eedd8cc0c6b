"""HTTP API: schemas, dependencies, error mapping and routes."""
