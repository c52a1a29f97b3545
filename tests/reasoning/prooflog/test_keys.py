"""The signing key: created 0600 on first use, refused when looser, its public half exported."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reasoning.prooflog.errors import KeyFileError
from reasoning.prooflog.keys import load_or_create_signing_key, load_public_key, public_key_path


def test_a_new_key_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "prooflog.key"

    load_or_create_signing_key(path)

    assert path.stat().st_mode & 0o777 == 0o600


def test_the_same_key_is_loaded_on_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "prooflog.key"
    first = load_or_create_signing_key(path)

    second = load_or_create_signing_key(path)

    assert first.public_key() == second.public_key()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_readable_by_others_is_refused_without_showing_it(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "prooflog.key"
    load_or_create_signing_key(path)
    os.chmod(path, mode)
    pem = path.read_text()

    with pytest.raises(KeyFileError, match=f"mode {mode:04o}.*chmod 600") as raised:
        load_or_create_signing_key(path)

    assert "PRIVATE" not in str(raised.value)
    assert pem.splitlines()[1] not in str(raised.value)


def test_an_unreadable_key_file_is_reported_without_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "prooflog.key"
    path.write_text("not a key at all")
    os.chmod(path, 0o600)

    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key") as raised:
        load_or_create_signing_key(path)

    assert "not a key at all" not in str(raised.value)


def test_the_exported_public_key_matches_and_loads_as_pem_or_raw_base64(tmp_path: Path) -> None:
    path = tmp_path / "prooflog.key"
    key = load_or_create_signing_key(path)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw_file = tmp_path / "raw.b64"
    raw_file.write_text(base64.b64encode(raw).decode() + "\n")

    assert load_public_key(public_key_path(path)) == key.public_key()
    assert load_public_key(raw_file) == key.public_key()


def test_a_public_key_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.b64"
    path.write_text(base64.b64encode(b"x" * 31).decode())

    with pytest.raises(KeyFileError, match="32 bytes"):
        load_public_key(path)


def test_threads_creating_the_same_key_at_once_all_get_the_one_that_was_published(tmp_path: Path) -> None:
    def raw(key: Ed25519PrivateKey) -> bytes:
        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    for attempt in range(20):
        path = tmp_path / f"race-{attempt}" / "log.key"
        with ThreadPoolExecutor(max_workers=4) as pool:
            keys = list(pool.map(load_or_create_signing_key, [path] * 4))
        assert len({raw(key) for key in keys}) == 1
        assert raw(load_or_create_signing_key(path)) == raw(keys[0])
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
