"""Signed checkpoints: a tree size, the root hash of that many records, and when it was signed.

The signature covers these exact bytes (ASCII, every line ending in `\\n`), modelled on the C2SP
`tlog-checkpoint` body:

    cryptoscalp-prooflog/checkpoint/v1
    <tree size, decimal>
    <root hash, standard base64>
    <signed_at, e.g. 2024-05-01T12:00:00.123456Z>

so any verifier can rebuild them from a checkpoint without this code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reasoning.prooflog.keys import key_id

CHECKPOINT_HEADER = "cryptoscalp-prooflog/checkpoint/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root_hash: bytes
    signed_at: str
    key_id: str
    signature: bytes


def signed_bytes(tree_size: int, root_hash: bytes, signed_at: str) -> bytes:
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{CHECKPOINT_HEADER}\n{tree_size}\n{root}\n{signed_at}\n".encode("ascii")


def sign_checkpoint(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, signed_at: str) -> Checkpoint:
    signature = key.sign(signed_bytes(tree_size, root_hash, signed_at))
    return Checkpoint(tree_size, root_hash, signed_at, key_id(key.public_key()), signature)


def signature_is_valid(key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    try:
        key.verify(checkpoint.signature, signed_bytes(checkpoint.tree_size, checkpoint.root_hash, checkpoint.signed_at))
    except (InvalidSignature, ValueError):
        return False
    return True
