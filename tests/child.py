"""Runs Python source in a fresh interpreter, for the tests that need one
(what a first import loads, a process killed by a signal, a child bounded
in time, a backend chosen before Keras is imported)."""

import os
import subprocess
import sys

from tests.paths import REPO


def run_python(code, *args, cwd=REPO, env=None, timeout=300, check=False):
    """``python -c code *args`` with the repository importable.

    Args:
        code: the Python source.
        *args: the child's ``sys.argv[1:]`` (turned into strings).
        cwd: its working folder (the repository by default).
        env: variables set besides the current environment's.
        timeout: seconds before `subprocess.TimeoutExpired`.
        check: raise `subprocess.CalledProcessError` on a non-zero exit.

    Returns:
        The `subprocess.CompletedProcess`, its output as text.
    """
    environment = dict(os.environ, **(env or {}))
    path = [REPO, environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
