"""Cited reference values: every value needs its source."""

import json

import pytest

from keras_dhsps.experiments.references import load_reference
from keras_dhsps.utils.errors import DHSPSError


def _write_reference(path, values, **header):
    path.write_text(json.dumps({**header, "values": values}))
    return str(path)


ENTRY = {
    "method": "IDHN",
    "bits": 48,
    "metric": "map@all",
    "value": 0.8,
    "source": "Table 3",
}


def test_reference_values_need_a_source(tmp_path):
    good = _write_reference(tmp_path / "good.json", [ENTRY])
    assert load_reference(good) == {
        ("IDHN", 48, "map@all"): [
            {
                "value": 0.8,
                "source": "Table 3",
                "kind": "paper",
                "protocol": None,
                "backbone": None,
            }
        ]
    }
    bad = _write_reference(tmp_path / "bad.json", [{**ENTRY, "source": " "}])
    with pytest.raises(DHSPSError, match=r"entry 1 lacks \['source'\]"):
        load_reference(bad)
    with pytest.raises(DHSPSError, match="reference file not found"):
        load_reference(str(tmp_path / "none.json"))
    # A damaged file or a JSON array was a traceback before.
    (tmp_path / "cut.json").write_text('{"values": [', encoding="utf-8")
    with pytest.raises(DHSPSError, match=r"cut\.json: not valid JSON"):
        load_reference(str(tmp_path / "cut.json"))
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DHSPSError, match="expected a JSON object"):
        load_reference(str(tmp_path / "list.json"))


def test_rerun_references_need_protocol_and_backbone(tmp_path):
    lacking = _write_reference(tmp_path / "r.json", [ENTRY], kind="rerun")
    with pytest.raises(
        DHSPSError, match=r"entry 1 lacks \['backbone', 'protocol'\]"
    ):
        load_reference(lacking)
    with pytest.raises(DHSPSError, match="kind='blog'; allowed: paper, rerun"):
        load_reference(
            _write_reference(tmp_path / "k.json", [ENTRY], kind="blog")
        )
    # Two files, one key: both values are kept, in file order.
    first = _write_reference(
        tmp_path / "a.json",
        [{**ENTRY, "protocol": "P", "backbone": "AlexNet"}],
        kind="rerun",
    )
    second = _write_reference(
        tmp_path / "b.json",
        [{**ENTRY, "value": 0.7, "protocol": "Q", "backbone": "AlexNet"}],
        kind="rerun",
    )
    entries = load_reference(first, second)[("IDHN", 48, "map@all")]
    assert [entry["value"] for entry in entries] == [0.8, 0.7]
    assert {entry["kind"] for entry in entries} == {"rerun"}
