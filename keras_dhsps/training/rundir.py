"""The run directory: its layout, its claim by one config, and its writing.

A run directory is what ``dhsps train --output RUN`` and
``keras_dhsps.training.fit.fit(config, run_dir=RUN)`` write; the files are
the constants below (:class:`RunDirectory` tells what each holds).
:func:`keras_dhsps.serving.load.load_hasher` opens the trained model.
"""

from __future__ import annotations

import dataclasses
import json
import os

from keras_dhsps.config import to_dict
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write
from keras_dhsps.utils.files import read_json_file
from keras_dhsps.utils.files import write_json
from keras_dhsps.utils.locks import RunLock
from keras_dhsps.utils.space import require_space
from keras_dhsps.utils.space import variables_bytes

CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_FILE = "history.json"
LOGS_DIR = "logs"
BEST_MODEL_FILE = "best.keras"
MODEL_FILE = "model.keras"
REPORT_FILE = "report.json"


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
    """The files of one run directory:

    ==================  ================================================
    ``config.json``     the experiment config, written when the run
                        starts; it claims the directory, so a rerun with
                        another config is refused before it mixes runs
    ``checkpoints/``    step-exact resumable checkpoints (rerun = resume)
    ``history.json``    per-epoch logs, written at the end of every epoch
    ``logs/``           TensorBoard logs (when ``tensorboard`` is installed)
    ``best.keras``      the best validation-mAP model (validation on)
    ``model.keras``     the final model, written when training ends
    ``report.json``     the retrieval report (``dhsps train``/``evaluate``);
                        a run with a report is complete
    ==================  ================================================
    """

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
        existing = self.read_config()
        if existing is None:
            return None
        differences = config_differences(existing, to_dict(config))
        if _only_more_epochs(differences, existing, config):
            return False  # a longer run of the same config: resume it
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
        state = self.check(config)
        existing = self.read_config()
        if existing is not None and existing != to_dict(config):
            self._extend(existing, config)
        if state is None or existing != to_dict(config):
            write_json(self.join(CONFIG_FILE), to_dict(config))
        return bool(state)

    def lock(self) -> RunLock:
        """The run's lock, held while it is trained (one trainer)."""
        return RunLock(self.path)

    def _extend(self, existing: dict, config) -> None:
        """Keeps the shorter run's report beside the run it extends."""
        if self.is_complete():
            epochs = existing["train"]["epochs"]
            os.replace(
                self.join(REPORT_FILE),
                self.join(f"report.epochs-{epochs}.json"),
            )

    def write_model(self, model) -> None:
        """Saves the final model as ``model.keras`` (atomically)."""
        require_space(self.model_file, variables_bytes(model))
        atomic_write(self.model_file, model.save)

    def write_report(self, report: dict) -> None:
        """Writes ``report.json``, which marks the run complete."""
        write_json(self.join(REPORT_FILE), report)


def _only_more_epochs(differences: list[str], existing: dict, config) -> bool:
    """Whether ``config`` differs from the run's only by more epochs."""
    return (
        len(differences) == 1
        and differences[0].startswith("train.epochs:")
        and config.train.epochs > existing["train"]["epochs"]
    )
