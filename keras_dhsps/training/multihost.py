"""Training across processes and hosts with JAX: ``jax.distributed`` and
``keras.distribution.DataParallel`` over every process's devices.

:func:`start_data_parallel` joins the processes through the coordinator
and sets the distribution; each process then feeds its share of every
global batch (Keras shards the tf.data stream by process) and the jitted
step sees the global batch, so the pairwise loss compares every pair.
:func:`process_run_dir` is where each process writes (process 0: the
run directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time

import keras

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import installed

#: ``dhsps train --distribution``: none, or data parallel across processes.
DISTRIBUTIONS = ("none", "data_parallel")


def check_multihost(num_processes: int | None, process_id: int | None) -> None:
    """Refuses, before any work, what cannot run: another Keras backend,
    no JAX, no TensorFlow for the tf.data reader, or a process id out of
    range (``None`` values are left to JAX's cluster detection).

    Raises:
        DHSPSError: one line saying which and what to do.
    """
    if num_processes is not None and process_id is not None:
        if not 0 <= process_id < num_processes:
            raise DHSPSError(
                f"--process-id {process_id} is out of range for "
                f"--num-processes {num_processes} (0 to {num_processes - 1})"
            )
    if keras.backend.backend() != "jax" or not installed("jax"):
        raise DHSPSError(
            "--distribution data_parallel needs KERAS_BACKEND=jax (JAX's "
            f"multi-process runtime), not {keras.backend.backend()}"
        )
    if not installed("tensorflow"):
        raise DHSPSError(
            "--distribution data_parallel reads training batches with "
            "tf.data (Keras shards it by process): pip install "
            "'keras_dhsps[cpu]'"
        )


def start_data_parallel(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 300,
):
    """Joins the processes and sets a ``DataParallel`` over all devices.

    Args:
        coordinator: ``HOST:PORT`` of process 0's coordinator; None: JAX's
            ``JAX_COORDINATOR_ADDRESS`` or cluster detection (SLURM, Open
            MPI, ...), as are ``num_processes`` and ``process_id``.
        timeout_s: how long to wait for every process to join.

    Returns:
        The ``keras.distribution.DataParallel`` now in effect.

    Raises:
        DHSPSError: see :func:`check_multihost`; the coordinator did not
            answer, or not every process joined, within ``timeout_s``.
    """
    import jax

    check_multihost(num_processes, process_id)
    address = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address is not None and process_id != 0:
        # JAX's client aborts the whole process (a C++ check failure) when
        # the coordinator never answers: wait for it here first.
        wait_for_address(address, timeout_s)
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=int(timeout_s),
        )
    except (RuntimeError, ValueError, jax.errors.JaxRuntimeError) as error:
        reason = str(error).strip().splitlines()
        raise DHSPSError(
            f"JAX's coordinator {coordinator or '(from the environment)'} "
            f"did not gather {num_processes or 'all'} processes within "
            f"{timeout_s} s: {reason[0] if reason else type(error).__name__}"
        ) from None
    distribution = keras.distribution.DataParallel(devices=jax.devices())
    keras.distribution.set_distribution(distribution)
    return distribution


def _host_and_port(address: str, what: str) -> tuple[str, int]:
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise DHSPSError(f"{what} address {address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def wait_for_address(
    address: str, timeout_s: float, *, what: str = "JAX's coordinator"
) -> None:
    """Returns once ``HOST:PORT`` (or ``scheme://HOST:PORT``) accepts a
    TCP connection.

    Raises:
        DHSPSError: ``address`` is not ``HOST:PORT``, or nothing answered
            there within ``timeout_s`` seconds.
    """
    host, port = _host_and_port(address, what)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise DHSPSError(
                    f"{what} {address} did not answer within {timeout_s:g} "
                    f"s ({error.strerror or error}); is it running?"
                ) from None
        time.sleep(0.5)


def is_chief() -> bool:
    """Whether this is process 0 (the one that writes the run directory)."""
    import jax

    return jax.process_index() == 0


@contextlib.contextmanager
def process_run_dir(path: str):
    """The run directory this process writes: ``path`` on process 0, a
    scratch directory (removed afterwards) on the others. Every process
    must save what process 0 saves: Keras creates variables while saving,
    and under a multi-process distribution that is a collective step."""
    if is_chief():
        yield path
        return
    scratch = tempfile.mkdtemp(prefix="dhsps-process-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def without_validation(config):
    """``config`` with ``train.validation_every = 0`` when it was None:
    validation would run on process 0 alone, and a step of the global
    model needs every process.

    Raises:
        DHSPSError: validation asked for explicitly (a positive value).
    """
    import dataclasses

    every = config.train.validation_every
    if every:
        raise DHSPSError(
            f"train.validation_every={every} is not supported with "
            "--distribution data_parallel (process 0 alone would validate); "
            "set it to 0 and evaluate the run afterwards"
        )
    train = dataclasses.replace(config.train, validation_every=0)
    return dataclasses.replace(config, train=train)


def local_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` on this process's devices alone, with no
    distribution left in effect: for process 0 to evaluate the trained
    model while the others have finished."""
    weights = model.get_weights()  # replicated: every process holds them
    keras.distribution.set_distribution(None)
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    return copy
