"""How progress is shown: bars redrawn with carriage returns on a
terminal, one line per epoch in a log (the CLI's rule, and the API's)."""

from __future__ import annotations

import sys


def progress_verbosity(verbose) -> int:
    """Keras' ``verbose`` for a progress request: ``"auto"``, None and 1
    mean bars on a terminal and one line per epoch elsewhere (2); 0 and 2
    are kept."""
    if verbose in ("auto", None, 1):
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)
