"""The Ed25519 key that signs checkpoints: created on first use, refused when other users can read it.

The private key is an unencrypted PKCS#8 PEM file with mode 0600 (the process must sign unattended; protecting
it further is the job of the file system or a secret store). Its public half is written beside it as
`<key>.pub` in PEM so verifiers, who never see the private key, can check checkpoints. No error message or
log line includes key bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reasoning.prooflog.errors import KeyFileError

PRIVATE_KEY_MODE = 0o600


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.name + ".pub")


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key at `path`, created (mode 0600, public half exported) when the file does not exist yet."""
    if not path.exists():
        return _create_signing_key(path)
    _refuse_loose_permissions(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: holds a {type(key).__name__}, the proof log signs with Ed25519")
    return key


def _create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Write the new key to a private temporary file and publish it with a hard link, which fails if
    the name exists: a concurrent creator never reads a half-written key, and exactly one key wins."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_KEY_MODE)  # the umask may have removed bits; it cannot add them
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_or_create_signing_key(path)  # another process created it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
    write_public_key(key.public_key(), public_key_path(path))
    return key


def _refuse_loose_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: signing key is readable or writable by group/others (mode {mode:04o}); run `chmod 600 {path}`"
        )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_public_key(key: Ed25519PublicKey, path: Path) -> None:
    """Atomically (temporary file, then rename): a reader never sees half a key."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(public_key_pem(key))
    os.replace(temporary, path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or from the base64 of its 32 raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key ({exc.strerror})") from None
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFileError(f"{path}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path}: holds a {type(key).__name__}, checkpoints are signed with Ed25519")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: neither PEM nor base64 of a raw Ed25519 public key") from None
    if len(raw) != 32:
        raise KeyFileError(f"{path}: a raw Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey) -> str:
    """First 8 bytes (hex) of SHA-256 of the raw public key: names the key in checkpoints and messages."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
