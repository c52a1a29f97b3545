"""The auditors' API: proof-log queries and proofs, plain-language explanations, rules, kill switch, metrics.

`create_app(settings)` (in `api.app`) builds the FastAPI application that `cryptoscalp serve` runs. Modules, one
concept each: `settings` (what the app is pointed at), `state` (the API's own SQLite database), `tokens` and
`auth` (bearer tokens with roles), `log_access` (reading and appending to the proof log from request threads),
`index` (the derived, rebuildable decision index), `pagination` (opaque cursors), `explain` (a decision in plain
language), `kill_switch` (the halt file the trading loop polls), `metrics` (Prometheus), `schemas` (the pydantic
models of requests and responses), `routes/` (the `/v1` endpoints) and `cli` (`cryptoscalp serve`, `cryptoscalp
tokens`).
"""
