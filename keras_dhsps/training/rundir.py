"""The run directory: one owner for its layout and for loading hashers.

A run directory is what ``dhsps train --output RUN`` and
``keras_dhsps.training.fit.fit(config, run_dir=RUN)`` write:

==================  ====================================================
``config.json``     the experiment config, written when the run starts;
                    it claims the directory, so a rerun with another
                    config is refused before it mixes two runs
``checkpoints/``    step-exact resumable checkpoints (rerun = resume)
``history.json``    per-epoch logs, written at the end of every epoch
``logs/``           TensorBoard logs (when ``tensorboard`` is installed)
``best.keras``      the best validation-mAP model (validation on)
``model.keras``     the final model, written when training ends
``report.json``     the retrieval report (``dhsps train``/``evaluate``);
                    a run with a report is complete
==================  ====================================================

:func:`load_hasher` is the one loader of trained hashers: it opens a run
directory, a ``.keras`` file or an exported SavedModel (the last needs
TensorFlow) and returns a :class:`keras_dhsps.serving.hasher.LoadedHasher`.
"""

from __future__ import annotations

import dataclasses
import json
import os

from keras_dhsps.utils.errors import DHSPSError

CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_FILE = "history.json"
LOGS_DIR = "logs"
BEST_MODEL_FILE = "best.keras"
MODEL_FILE = "model.keras"
REPORT_FILE = "report.json"
#: The file that marks an exported SavedModel directory.
SAVED_MODEL_FILE = "saved_model.pb"


def read_json_file(path: str, what: str):
    """A JSON file the user named or a run holds; errors are one line.

    Raises:
        DHSPSError: missing, unreadable or not JSON.
    """
    from keras_dhsps.utils.files import read_json

    if not os.path.isfile(path):
        raise DHSPSError(f"{what} not found: {path}")
    try:
        return read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DHSPSError(
            f"{path}: not a readable JSON file ({error})"
        ) from None


def _flatten(values: dict, prefix: str = "") -> dict:
    """``section.field`` -> value (free-form dicts such as ``params`` stay
    whole, so they compare as one field)."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and prefix.count(".") < 1:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` of the fields two config dicts differ in."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    return [
        f"{key}: {json.dumps(old_flat.get(key))} -> "
        f"{json.dumps(new_flat.get(key))}"
        for key in sorted(set(old_flat) | set(new_flat))
        if old_flat.get(key) != new_flat.get(key)
    ]


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The files of one run directory (see the module docstring)."""

    path: str

    def join(self, name: str) -> str:
        """The path of ``name`` (a layout constant) in this run."""
        return os.path.join(self.path, name)

    @property
    def checkpoints(self) -> str:
        return self.join(CHECKPOINTS_DIR)

    @property
    def history_file(self) -> str:
        return self.join(HISTORY_FILE)

    @property
    def model_file(self) -> str:
        return self.join(MODEL_FILE)

    def read_config(self) -> dict | None:
        """The run's ``config.json`` as a dict, or None before it starts."""
        path = self.join(CONFIG_FILE)
        if not os.path.isfile(path):
            return None
        return read_json_file(path, "run config")

    def is_complete(self) -> bool:
        """Whether the run was trained and evaluated (``report.json``)."""
        return os.path.isfile(self.join(REPORT_FILE))

    def check(self, config) -> bool | None:
        """What this directory holds for ``config``, writing nothing: None
        (no run yet), False (``config``'s run, to resume) or True (that
        run, complete: nothing to do).

        Raises:
            DHSPSError: the directory holds a run of another config (the
                message names every differing key).
        """
        from keras_dhsps.config import to_dict

        existing = self.read_config()
        if existing is None:
            return None
        differences = config_differences(existing, to_dict(config))
        if differences:
            raise DHSPSError(
                f"{self.path} holds a run with another config ("
                + "; ".join(differences)
                + "); give another --output, or the same options to resume it"
            )
        return self.is_complete()

    def claim(self, config) -> bool:
        """Makes this directory ``config``'s run (writes ``config.json``
        when it holds no run yet); True when that run is already complete.

        Raises:
            DHSPSError: see :meth:`check`.
        """
        from keras_dhsps.config import to_dict
        from keras_dhsps.utils.files import write_json

        state = self.check(config)
        if state is None:
            write_json(self.join(CONFIG_FILE), to_dict(config))
        return bool(state)

    def write_model(self, model) -> None:
        """Saves the final model as ``model.keras`` (atomically)."""
        from keras_dhsps.utils.files import atomic_write

        atomic_write(self.model_file, model.save)

    def write_report(self, report: dict) -> None:
        """Writes ``report.json``, which marks the run complete."""
        from keras_dhsps.utils.files import write_json

        write_json(self.join(REPORT_FILE), report)


def is_saved_model(path: str) -> bool:
    """Whether ``path`` is an exported SavedModel directory."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


def resolve_model_file(path: str) -> tuple[str, dict | None]:
    """``(the .keras file, the run's config dict or None)`` of a run
    directory or a ``.keras`` file.

    Raises:
        DHSPSError: a directory without ``model.keras``, or a missing file.
    """
    if os.path.isdir(path):
        run = RunDirectory(path)
        if not os.path.isfile(run.model_file):
            raise DHSPSError(
                f"{path} is neither a run directory (no {MODEL_FILE}) "
                f"nor a SavedModel (no {SAVED_MODEL_FILE})"
            )
        return run.model_file, run.read_config()
    if not os.path.isfile(path):
        raise DHSPSError(f"model file not found: {path}")
    return path, None


def load_hasher(
    path: str,
    *,
    resize: str | None = None,
    resize_to: tuple[int, int] | None = None,
):
    """Opens a run directory, a ``.keras`` file or an exported SavedModel.

    ``.keras`` files load in Keras safe mode
    (:func:`keras_dhsps.models.hasher.load_hasher`). The resize mode of a Keras
    model is ``resize``/``resize_to`` when given, else the run config's
    ``input`` section, else ``"direct"``; a SavedModel uses the mode it was
    exported with.

    Returns:
        A :class:`keras_dhsps.serving.hasher.LoadedHasher` (raw uint8 images of
        any size in, codes out).

    Raises:
        DHSPSError: nothing loadable at ``path``, or a SavedModel without
            TensorFlow.
    """
    if os.path.isdir(path) and is_saved_model(path):
        from keras_dhsps.serving.export import load_saved_model_hasher

        return load_saved_model_hasher(path)
    from keras_dhsps.models.hasher import load_hasher as load_keras_file
    from keras_dhsps.serving.hasher import LoadedHasher
    from keras_dhsps.serving.hasher import hasher_metadata

    model_file, config = resolve_model_file(path)
    model = load_keras_file(model_file)
    inputs = (config or {}).get("input", {})
    return LoadedHasher(
        source=path,
        metadata=hasher_metadata(
            model,
            config,
            resize=resize or inputs.get("resize", "direct"),
            resize_to=tuple(resize_to or inputs.get("resize_to", (256, 256))),
        ),
        model=model,
    )
