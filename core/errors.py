"""The error hierarchy. Every message names what was wrong and where (file, row, symbol, field)."""

from __future__ import annotations


class CryptoScalpError(Exception):
    """Base of every error the product raises on purpose; the CLI prints it as one line."""


class ConfigError(CryptoScalpError):
    """A configuration value or command-line option is invalid."""


class DataError(CryptoScalpError):
    """Market data is missing, unreadable or fails a quality check."""


class DataQualityError(DataError):
    """Market data was read but breaks a quality rule (gap, NaN, bad price, order)."""


class UnknownSymbolError(DataError):
    """A requested pair has no data or no instrument definition."""


class VenueError(CryptoScalpError):
    """A venue refused or could not process a request."""


class OrderRejected(VenueError):
    """An order was rejected; `reason` is a stable reason code such as `EX.min_notional`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class DownloadError(CryptoScalpError):
    """Fetching history from an exchange failed."""
