"""Every error asmm raises on purpose, in one module (as Freqtrade's ``exceptions``).

Catch :class:`AsmmError` for "asmm refused, and the message says why and what to do";
anything else that escapes is a bug. Subclasses that also derive from ``ValueError`` are
the ones raised for a bad value handed in (a setting, a message, a request).
"""

from __future__ import annotations


class AsmmError(Exception):
    """Base class of every error asmm raises on purpose."""


class ConfigError(AsmmError, ValueError):
    """A setting (config block, environment variable, flag) has a value asmm cannot run
    with; the message names the key."""


# --------------------------------------------------------------------------- data


class DataError(AsmmError):
    """Market data cannot support what was asked of it (missing files, columns, no rows)."""


class EstimationError(AsmmError, ValueError):
    """The data cannot support the estimate (too few events, no depth information)."""


class CalibrationError(AsmmError):
    """The data cannot support a parameter file; nothing was written."""


# --------------------------------------------------------------------------- parameter file


class ParamsError(AsmmError):
    """The parameter file cannot be used. Never quote on it.

    ``kind`` names the cause in a form that stays the same while the cause lasts (messages
    of some causes carry the clock), so a guard can log a cause once, and again when it
    changes.
    """

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class ParamsMissingError(ParamsError):
    """No file at the path."""


class ParamsInvalidError(ParamsError):
    """The file cannot be read, or is not valid schema-v1 JSON with plausible numbers."""

    def __init__(self, message: str, kind: str | None = None):
        # One file version gives one message: the message itself names the cause.
        super().__init__(message, kind or message)


class ParamsExpiredError(ParamsError):
    """``valid_until`` has passed, or the data behind the file is older than allowed."""


class ParamsMismatchError(ParamsError):
    """A valid file for another market: another coin, or a mid far from the live one."""


# --------------------------------------------------------------------------- the bot


class SharedStateError(AsmmError):
    """The partner bot's inventory is unknown (missing, unreadable or stale state)."""


# --------------------------------------------------------------------------- venues


class ProtocolError(AsmmError, ValueError):
    """A venue's message that does not have the shape its channel or type promises."""


class UnknownCoinError(AsmmError):
    """A configured coin is not listed by the exchange (not worth retrying)."""


class WriterError(AsmmError):
    """A file cannot be written without damaging earlier data (e.g. a header mismatch)."""


class HeartbeatError(AsmmError, ValueError):
    """The heartbeat file exists but cannot be read or is not a collector's heartbeat."""


class InfoError(AsmmError, ValueError):
    """A ``POST /info`` request the exchange rejects (HTTP 400)."""


# --------------------------------------------------------------------------- reports


class PnLError(AsmmError):
    """The report cannot be made; the message says why and what to do."""
