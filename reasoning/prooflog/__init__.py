"""Tamper-evident proof log: RFC 8785 records in an RFC 6962/9162 Merkle tree with Ed25519-signed checkpoints.

Modules, one concept each: `canonical` (record bytes), `merkle` (hashes, subtree addressing), `frontier`
(incremental tree), `proofs` (inclusion/consistency, build and check), `records` (the hashed envelope),
`keys` (signing key file), `checkpoint` (signed tree heads), `store` (storage interface) and `sqlite_store`,
`log` (the writer), `verify` (whole-log verification), `cli` (`cryptoscalp proof`).
"""
