"""The service's SQLite state: the serving history of sales and its one conflict policy."""
