"""Errors of the proof log. Messages name the file, record or field at fault and never carry key material."""

from __future__ import annotations

from core.errors import CryptoScalpError


class ProofLogError(CryptoScalpError):
    """The proof log could not do what was asked (bad record, bad key file, store problem)."""


class CanonicalJsonError(ProofLogError):
    """A record cannot be written as RFC 8785 canonical JSON (NaN, infinity, a non-JSON type)."""


class KeyFileError(ProofLogError):
    """The checkpoint signing key or a public key file is missing, unreadable or too widely readable."""


class StoreError(ProofLogError):
    """The storage behind the log is missing, was written by another writer, or refused a write."""


class ProofRequestError(ProofLogError):
    """A proof was asked for sizes or an index the log cannot prove (index beyond the tree, old size > new)."""
