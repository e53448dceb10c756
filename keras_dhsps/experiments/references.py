"""Cited reference values printed beside a table's own numbers.

A reference file is JSON: ``{"note", "kind": "paper" | "rerun", "values":
[{"method", "bits", "metric", "value", "source"[, "protocol",
"backbone"]}, ...]}``. :func:`load_reference` reads and checks them.
"""

from __future__ import annotations

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file

#: Reference kinds and the column heading each gets. ``paper`` values come
#: from the IDHN paper itself; ``rerun`` values are others' published
#: re-runs of IDHN (never headed "paper").
REFERENCE_COLUMNS = {
    "paper": "paper",
    "rerun": "reported by others (re-run)",
}
#: Fields every entry needs, and those a ``rerun`` entry adds (a re-run is
#: only comparable with its protocol and backbone stated).
_REFERENCE_FIELDS = {"method", "bits", "metric", "value", "source"}
_RERUN_FIELDS = {"protocol", "backbone"}


def load_reference(*paths: str) -> dict:
    """Reads reference-values JSON files into ``{(method, bits, metric):
    [entry, ...]}``, each entry ``{"value", "source", "kind", "protocol",
    "backbone"}`` (the last two None for the paper), in file order.

    ``kind`` defaults to ``"paper"``; ``rerun`` entries also need
    ``protocol`` and ``backbone``. Every value must cite where it came
    from. Cells with no entry stay empty: nothing is invented.

    Raises:
        DHSPSError: missing file, unknown kind, or an entry lacking a field
            or with an empty source.
    """
    reference = {}
    for path in paths:
        for key, entry in _read_entries(path):
            reference.setdefault(key, []).append(entry)
    return reference


def _read_entries(path: str) -> list[tuple[tuple, dict]]:
    """``(key, entry)`` of every value of one reference file, checked."""
    document = read_json_file(path, "reference file", kind=dict)
    kind = document.get("kind", "paper")
    if kind not in REFERENCE_COLUMNS:
        raise DHSPSError(
            f"{path}: kind={kind!r}; allowed: {', '.join(REFERENCE_COLUMNS)}"
        )
    required = _REFERENCE_FIELDS | (_RERUN_FIELDS if kind == "rerun" else set())
    entries = []
    for number, entry in enumerate(document.get("values", []), start=1):
        missing = _missing_fields(entry, required)
        if missing:
            raise DHSPSError(f"{path}: entry {number} lacks {missing}")
        key = (entry["method"], int(entry["bits"]), entry["metric"])
        entries.append((key, _entry(entry, kind)))
    return entries


def _missing_fields(entry: dict, required: set) -> list[str]:
    """The required fields ``entry`` lacks, else those left blank."""
    return sorted(required - set(entry)) or [
        field
        for field in sorted(required - {"value", "bits"})
        if not str(entry[field]).strip()
    ]


def _entry(entry: dict, kind: str) -> dict:
    return {
        "value": float(entry["value"]),
        "source": entry["source"],
        "kind": kind,
        "protocol": entry.get("protocol"),
        "backbone": entry.get("backbone"),
    }
