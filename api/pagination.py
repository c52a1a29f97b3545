"""Opaque cursors: where the next page of a list starts.

A cursor is the URL-safe base64 of `<list>:<version>:<position>` — e.g. the last sequence number served — so a
client passes it back unchanged and the server resumes exactly after the last item, however many records were
appended meanwhile. It is opaque by contract, not by secrecy: it carries nothing but a position.
"""

from __future__ import annotations

import base64
import binascii

CURSOR_VERSION = "1"


class CursorError(ValueError):
    """A cursor this API did not issue for this list (mangled, from another list or version)."""


def encode_cursor(list_name: str, position: int) -> str:
    raw = f"{list_name}:{CURSOR_VERSION}:{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(list_name: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("not a cursor this API issued; pass `next_cursor` from the previous page unchanged") from None
    name, _, rest = raw.partition(":")
    version, _, position = rest.partition(":")
    if name != list_name or version != CURSOR_VERSION or not position.isdigit() or len(position) > 19:
        raise CursorError(f"not a cursor of this list ({list_name}); pass `next_cursor` from its previous page")
    return int(position)
