"""Free space is checked before a write (keras_dhsps.utils.space)."""

import os

import pytest

from keras_dhsps.utils import space
from keras_dhsps.utils.errors import DHSPSError


def test_free_bytes_reads_the_nearest_existing_directory(tmp_path):
    stats = os.statvfs(tmp_path)
    expected = stats.f_bavail * stats.f_frsize
    measured = space.free_bytes(str(tmp_path / "not" / "yet" / "file.h5"))
    assert abs(measured - expected) < 64 << 20  # other writers meanwhile


def test_a_write_larger_than_the_free_space_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(space, "free_bytes", lambda path: 3 << 20)
    space.require_space(str(tmp_path / "a"), 1 << 20)
    with pytest.raises(DHSPSError) as raised:
        space.require_space(str(tmp_path / "a"), 5 << 20)
    message = str(raised.value)
    assert message.startswith(f"cannot write {tmp_path / 'a'}")
    assert "needs about 6.0 MiB, 3.0 MiB free" in message


def test_variables_bytes_counts_every_weight():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    assert space.variables_bytes(model) == (3 * 4 + 4) * 4
