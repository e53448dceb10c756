"""Exceptions that the command line reports as one clear line."""


class DHSPSError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The CLI prints ``error: <message>`` and exits with status 2 instead of a
    traceback. Library callers can catch it like any exception.
    """


class DataError(DHSPSError, ValueError):
    """A dataset, list file or annotation file is missing or malformed.

    The message names the file and, where there is one, the line.
    """


class UnknownNameError(DHSPSError, KeyError):
    """A registry lookup (dataset, backbone, loss) found no such name."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class ConfigError(DHSPSError, ValueError):
    """A config field (or ``--set KEY=VALUE``) holds a value it cannot take.

    The message names the key (``train.epochs``), the value and what is
    allowed.
    """
