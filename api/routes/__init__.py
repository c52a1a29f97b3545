"""The API's routes, one module per resource: decisions, the log, rules, operations."""
