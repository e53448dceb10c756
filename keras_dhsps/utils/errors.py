"""Exceptions that the command line reports as one clear line."""


class DHSPSError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The CLI prints ``error: <message>`` and exits with status 2 instead of a
    traceback. Library callers can catch it like any exception. The message
    is one line whatever it quotes: a line break, tab or other unprintable
    character of a user's value (a config key, a file name) is shown
    escaped (``\\n``), not written.
    """

    def __str__(self) -> str:  # KeyError (UnknownNameError) would quote it.
        message = str(self.args[0]) if self.args else ""
        return "".join(map(_printable, message))


class DataError(DHSPSError, ValueError):
    """A dataset, list file or annotation file is missing or malformed.

    The message names the file and, where there is one, the line.
    """


class UnknownNameError(DHSPSError, KeyError):
    """A registry lookup (dataset, backbone, loss) found no such name."""


class ConfigError(DHSPSError, ValueError):
    """A config field (or ``--set KEY=VALUE``) holds a value it cannot take.

    The message names the key (``train.epochs``), the value and what is
    allowed.
    """


def _printable(character: str) -> str:
    """``character``, or its escape if printing it would break the line."""
    if character.isprintable():
        return character
    return character.encode("unicode_escape").decode("ascii")
