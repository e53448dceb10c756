"""The image store: decoded once, verified on open, never left half-written.

Oracles: Pillow's decode (libjpeg with the accurate IDCT) and a NumPy
bilinear resize written here from the definition (half-pixel centres,
edge clamping, no antialiasing), independent of both TensorFlow and the
store's NumPy twin.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as hs
from PIL import Image

from keras_dhsps.config import InputConfig
from keras_dhsps.data import decoding as dec
from keras_dhsps.data import store as st
from keras_dhsps.data import store_file as sf
from keras_dhsps.data.base import Split
from keras_dhsps.data.sizes import stored_size
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from tests.child import run_python
from tests.dataset_trees import write_jpeg

MODES = ("direct", "resize_crop", "shorter_side_crop")
# (width, height) of the generated JPEGs: landscape, portrait, upscaled.
SIZES = [(50, 37), (31, 44), (64, 48), (20, 26), (45, 45), (70, 33)]


@pytest.fixture(autouse=True)
def _fresh_cache():
    st.clear_memory_cache()
    yield
    st.clear_memory_cache()


def _noisy_jpeg(path: str, size: tuple[int, int], seed: int) -> None:
    """A smooth image plus noise: resizing it exercises every rounding."""
    write_jpeg(path, size=size, seed=seed)
    rng = np.random.default_rng(seed)
    with Image.open(path) as image:
        pixels = np.asarray(image, np.float32)
    pixels += rng.normal(0, 20, pixels.shape)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)


@pytest.fixture
def tree(tmp_path) -> Split:
    paths = []
    for index, size in enumerate(SIZES):
        path = str(tmp_path / "images" / f"{index}.jpg")
        _noisy_jpeg(path, size, seed=index)
        paths.append(path)
    labels = np.eye(len(paths), 3, dtype=np.uint8)
    labels[:, 2] = 1
    return Split(labels=labels, paths=tuple(paths))


def _config(tmp_path, **values) -> InputConfig:
    values.setdefault("store_dir", str(tmp_path / "stores"))
    values.setdefault("resize_to", (36, 36))
    return InputConfig(**values)


def _file_config(tmp_path, **values) -> InputConfig:
    """A budget of 0 MB: every store goes to a memory-mapped file."""
    return _config(tmp_path, memory_budget_mb=0, **values)


# ---------------------------------------------------------------- oracle
def _reference_resize(image: np.ndarray, height: int, width: int):
    """Bilinear resize from the definition, float64: output pixel i
    samples input coordinate (i + 0.5) * in / out - 0.5, clamped to the
    image, from the 2x2 neighbours."""

    def axis(out_size, in_size):
        coords = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
        coords = np.clip(coords, 0, in_size - 1)
        low = np.floor(coords).astype(int)
        return low, np.minimum(low + 1, in_size - 1), coords - low

    y0, y1, wy = axis(height, image.shape[0])
    x0, x1, wx = axis(width, image.shape[1])
    pixels = image.astype(np.float64)
    top = (
        pixels[y0][:, x0] * (1 - wx[:, None]) + pixels[y0][:, x1] * wx[:, None]
    )
    bottom = (
        pixels[y1][:, x0] * (1 - wx[:, None]) + pixels[y1][:, x1] * wx[:, None]
    )
    return top * (1 - wy[:, None, None]) + bottom * wy[:, None, None]


def _reference(path_or_image, resize: str, size: tuple[int, int]):
    """The stored image by the oracle, before rounding: Pillow decode,
    reference resize (float64)."""
    if isinstance(path_or_image, str):
        with Image.open(path_or_image) as image:
            pixels = np.asarray(image.convert("RGB"))
    else:
        pixels = path_or_image
    height, width = size
    if resize != "shorter_side_crop":
        return _reference_resize(pixels, height, width)
    # Shorter side to `height` (float32, as resize_images computes it).
    shape = np.array(pixels.shape[:2], np.float32)
    scaled = np.ceil(shape * (np.float32(height) / shape.min()) - 1e-3)
    scaled = np.maximum(scaled.astype(int), height)
    full = _reference_resize(pixels, *scaled)
    top, left = (scaled[0] - height) // 2, (scaled[1] - width) // 2
    return full[top : top + height, left : left + width]


def _assert_close_to_reference(images, references) -> None:
    """Equal to the rounded reference, except ±1 where the reference is
    within 1e-3 of a rounding tie (x.5: float32 arithmetic may round it
    either way)."""
    reference = np.stack(references)
    diff = np.abs(images.astype(np.int64) - np.rint(reference))
    assert diff.max() <= 1
    near_tie = np.abs(reference - np.floor(reference) - 0.5) < 1e-3
    assert near_tie[diff > 0].all()


# --------------------------------------------------------- sizes, modes
@pytest.mark.backend_neutral
def test_stored_size_per_resize_mode():
    assert stored_size(227, resize="direct", resize_to=(256, 256)) == (
        227,
        227,
    )
    assert stored_size(
        (224, 200), resize="resize_crop", resize_to=(256, 240)
    ) == (256, 240)
    # The shorter side S, stored as the centre S x S square.
    assert stored_size(
        224, resize="shorter_side_crop", resize_to=(256, 999)
    ) == (256, 256)
    with pytest.raises(DHSPSError, match=r"input\.resize_to=\[200, 200\]"):
        stored_size(227, resize="resize_crop", resize_to=(200, 200))
    with pytest.raises(DHSPSError, match="input.resize='bicubic'"):
        stored_size(227, resize="bicubic")


@pytest.mark.backend_neutral
def test_unknown_store_mode_is_refused_when_the_config_is_built(tmp_path):
    # Validation at the boundary: the config refuses it before any store.
    with pytest.raises(DHSPSError, match='input.store="disk".*"memory"'):
        _config(tmp_path, store="disk")


# ------------------------------------------------------------ round trip
@pytest.mark.backend_neutral
@pytest.mark.parametrize("resize", MODES)
def test_store_matches_the_reference_decode(tree, tmp_path, resize):
    config = _config(tmp_path, resize=resize)
    store = st.open_store(tree, image_size=32, input_config=config)
    size = store.image_shape[:2]
    assert size == ((32, 32) if resize == "direct" else (36, 36))
    assert store.images.dtype == np.uint8
    assert store.images.shape == (len(SIZES), *size, 3)
    np.testing.assert_array_equal(store.labels, tree.labels)
    assert store.skipped == [] and store.path is None
    _assert_close_to_reference(
        store.images, [_reference(p, resize, size) for p in tree.paths]
    )


@pytest.mark.backend_neutral
def test_read_returns_the_rows_in_the_order_given(tree, tmp_path):
    store = st.open_store(tree, image_size=32, input_config=_config(tmp_path))
    indices = np.array([4, 0, 4, 2])
    batch = store.read(indices)
    assert batch.dtype == np.uint8 and batch.shape == (4, 32, 32, 3)
    for row, index in enumerate(indices):
        np.testing.assert_array_equal(batch[row], store.images[index])
    with pytest.raises(TypeError, match="1-D integer"):
        store.read(np.array([0.0, 1.0]))


@pytest.mark.backend_neutral
def test_image_at_the_stored_size_is_kept_exactly(tmp_path):
    path = str(tmp_path / "exact.png")
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    split = Split(labels=np.ones((1, 1), np.uint8), paths=(path,))
    store = st.open_store(split, image_size=32, input_config=_config(tmp_path))
    np.testing.assert_array_equal(store.images[0], pixels)


# ------------------------------------------------------------ memmap path
@pytest.mark.backend_neutral
def test_beyond_the_budget_the_store_is_a_memory_mapped_file(tree, tmp_path):
    in_memory = st.open_store(
        tree, image_size=32, input_config=_config(tmp_path)
    )
    old_umask = os.umask(0o027)
    try:
        mapped = st.open_store(
            tree, image_size=32, input_config=_file_config(tmp_path)
        )
    finally:
        os.umask(old_umask)
    assert isinstance(mapped.images, np.memmap)
    assert not mapped.images.flags.writeable
    np.testing.assert_array_equal(mapped.images, in_memory.images)
    np.testing.assert_array_equal(mapped.labels, tree.labels)
    assert os.listdir(tmp_path / "stores") == [os.path.basename(mapped.path)]
    # Created like any file the user writes: 0o666 less the umask.
    assert os.stat(mapped.path).st_mode & 0o777 == 0o640
    trailer = sf.verify_store_file(mapped.path)
    assert trailer["shape"] == [len(SIZES), 32, 32, 3]
    assert trailer["key"] == mapped.key


@pytest.mark.backend_neutral
def test_default_store_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert st.default_store_dir() == str(tmp_path / "keras_dhsps" / "stores")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert st.default_store_dir() == str(
        tmp_path / "home" / ".cache" / "keras_dhsps" / "stores"
    )


# ------------------------------------------------------------------ reuse
@pytest.mark.backend_neutral
def test_a_file_store_is_decoded_once(tree, tmp_path, decodes):
    config = _file_config(tmp_path)
    first = st.open_store(tree, image_size=32, input_config=config)
    second = st.open_store(tree, image_size=32, input_config=config)
    assert decodes == [len(SIZES)]
    np.testing.assert_array_equal(first.images, second.images)
    # A different size or mode is a different store.
    st.open_store(tree, image_size=30, input_config=config)
    assert decodes == [len(SIZES)] * 2


@pytest.mark.backend_neutral
def test_an_in_memory_store_is_reused_within_the_process(
    tree, tmp_path, decodes
):
    config = _config(tmp_path)
    first = st.open_store(tree, image_size=32, input_config=config)
    second = st.open_store(tree, image_size=32, input_config=config)
    assert decodes == [len(SIZES)]
    assert second.images is first.images
    assert not os.path.exists(tmp_path / "stores")  # nothing on disk
    st.clear_memory_cache()
    st.open_store(tree, image_size=32, input_config=config)
    assert decodes == [len(SIZES)] * 2


@pytest.mark.backend_neutral
def test_the_memory_cache_holds_at_most_the_budget(tree, tmp_path, decodes):
    # One store of 6 images at 32x32 is 18 KiB; a 1 MB budget holds many,
    # but stores at 300x300 (1.6 MB) do not fit next to each other.
    small = _config(tmp_path, memory_budget_mb=1)
    st.open_store(tree, image_size=32, input_config=small)
    cache = st._MEMORY_STORES
    assert len(cache._stores) == 1
    large = _config(tmp_path, memory_budget_mb=2)
    st.open_store(tree, image_size=300, input_config=large)
    st.open_store(tree, image_size=299, input_config=large)
    # 18 KiB + 1.62 MB + 1.61 MB > 2 MiB: the two oldest are dropped.
    total = sum(entry[0].nbytes for entry in cache._stores.values())
    assert total <= 2 << 20 and len(cache._stores) == 1
    assert len(decodes) == 3


@pytest.mark.backend_neutral
@pytest.mark.parametrize("budget", [0, 64])
def test_labels_come_from_the_split_given_not_the_store(
    tree, tmp_path, budget, decodes
):
    # Same images, other labels (e.g. MIRFlickr with 24 or 38 labels).
    config = _config(tmp_path, memory_budget_mb=budget)
    st.open_store(tree, image_size=32, input_config=config)
    relabelled = Split(labels=1 - tree.labels, paths=tree.paths)
    store = st.open_store(relabelled, image_size=32, input_config=config)
    assert decodes == [len(SIZES)]
    np.testing.assert_array_equal(store.labels, 1 - tree.labels)


# ------------------------------------------------------------- bad input
def _one_refusal(caplog, *words) -> None:
    lines = [
        r.getMessage() for r in caplog.records if "refused" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0]
    for word in words:
        assert word in lines[0]


def _corrupt(path: str, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.backend_neutral
def test_a_truncated_store_is_refused_and_rebuilt(
    tree, tmp_path, decodes, caplog
):
    config = _file_config(tmp_path)
    built = st.open_store(tree, image_size=32, input_config=config)
    expected = np.array(built.images)
    size = os.path.getsize(built.path)
    del built
    os.truncate(
        st.open_store(tree, image_size=32, input_config=config).path,
        size - 1000,
    )
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        rebuilt = st.open_store(tree, image_size=32, input_config=config)
    _one_refusal(caplog, "truncated", rebuilt.path)
    assert decodes == [len(SIZES)] * 2
    np.testing.assert_array_equal(rebuilt.images, expected)
    assert os.path.getsize(rebuilt.path) == size


@pytest.mark.backend_neutral
@pytest.mark.parametrize(
    "where, reason",
    [("data", "data checksum mismatch"), ("trailer", "trailer checksum")],
)
def test_an_edited_store_is_refused_and_rebuilt(
    tree, tmp_path, decodes, caplog, where, reason
):
    config = _file_config(tmp_path)
    path = st.open_store(tree, image_size=32, input_config=config).path
    if where == "data":
        _corrupt(path, sf.DATA_OFFSET + 5)
    else:  # Change a digit of the recorded shape, keeping valid JSON.
        with open(path, "r+b") as handle:
            data = handle.read()
            at = data.index(b'"shape": [6')
            handle.seek(at + len(b'"shape": ['))
            handle.write(b"5")
    with pytest.raises(DataError, match="not a valid image store"):
        sf.verify_store_file(path)
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        store = st.open_store(tree, image_size=32, input_config=config)
    _one_refusal(caplog, reason)
    assert len(decodes) == 2
    sf.verify_store_file(store.path)


@pytest.mark.backend_neutral
def test_opening_samples_blocks_and_verify_checks_them_all(
    tree, tmp_path, monkeypatch, caplog
):
    # 4 KiB blocks: 6 images x 3 KiB = 5 blocks; open checks 0, 2 and 4.
    monkeypatch.setattr(sf, "BLOCK_BYTES", 4096)
    config = _file_config(tmp_path)
    store = st.open_store(tree, image_size=32, input_config=config)
    assert len(sf.verify_store_file(store.path)["block_sha256"]) == 5
    _corrupt(store.path, sf.DATA_OFFSET + 4096 + 7)  # block 1
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        st.open_store(tree, image_size=32, input_config=config)
    assert not [r for r in caplog.records if "refused" in r.getMessage()]
    with pytest.raises(DataError, match="block 1"):
        sf.verify_store_file(store.path)
    _corrupt(store.path, sf.DATA_OFFSET + 2 * 4096 + 7)  # block 2
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        st.open_store(tree, image_size=32, input_config=config)
    _one_refusal(caplog, "block 2")


@pytest.mark.backend_neutral
def test_a_stale_store_is_refused_when_an_image_changes(
    tree, tmp_path, decodes, caplog
):
    config = _file_config(tmp_path)
    before = st.open_store(tree, image_size=32, input_config=config)
    path = before.path
    del before
    _noisy_jpeg(tree.paths[1], SIZES[1], seed=99)
    os.utime(tree.paths[1], ns=(1, 1))  # a new mtime whatever the clock
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        after = st.open_store(tree, image_size=32, input_config=config)
    _one_refusal(caplog, "built for other images")
    assert after.path == path  # rebuilt in place, no stale file left
    assert os.listdir(tmp_path / "stores") == [os.path.basename(path)]
    _assert_close_to_reference(
        after.images[1:2], [_reference(tree.paths[1], "direct", (32, 32))]
    )


@pytest.mark.backend_neutral
def test_a_store_from_another_manifest_is_refused(
    tree, tmp_path, decodes, caplog
):
    config = _file_config(tmp_path)
    first = dataclasses.replace(tree, manifest_checksum="a" * 64)
    second = dataclasses.replace(tree, manifest_checksum="b" * 64)
    st.open_store(first, image_size=32, input_config=config)
    st.open_store(first, image_size=32, input_config=config)
    assert len(decodes) == 1
    with caplog.at_level(logging.WARNING, logger=sf.__name__):
        st.open_store(second, image_size=32, input_config=config)
    _one_refusal(caplog, "another manifest")
    assert len(decodes) == 2


@pytest.mark.backend_neutral
def test_a_manifest_split_is_keyed_by_its_checksum_not_the_files(tree):
    keyed = dataclasses.replace(tree, manifest_checksum="c" * 64)
    slot, key = st.store_key(keyed, resize="direct", size=(32, 32))
    os.utime(tree.paths[0], ns=(5, 5))
    assert st.store_key(keyed, resize="direct", size=(32, 32)) == (slot, key)
    # Without a manifest, the files' sizes and mtimes are the identity.
    _, plain = st.store_key(tree, resize="direct", size=(32, 32))
    os.utime(tree.paths[0], ns=(6, 6))
    assert st.store_key(tree, resize="direct", size=(32, 32))[1] != plain


@pytest.mark.backend_neutral
def test_load_manifest_gives_splits_their_manifest_checksum(tmp_path):
    from keras_dhsps.data.manifest import load_manifest
    from keras_dhsps.data.native import prepare
    from tests import dataset_trees as fixtures

    fixtures.make_mirflickr(str(tmp_path), count=30, unlabelled=3)
    directory, record = prepare(
        "mirflickr25k",
        str(tmp_path),
        seed=0,
        num_query=4,
        num_train=10,
        num_images=30,
    )
    dataset = load_manifest(directory, root=str(tmp_path))
    for split in dataset.splits.values():
        assert split.manifest_checksum == record["checksum"]


@pytest.mark.backend_neutral
def test_an_interrupted_build_leaves_no_store(tree, tmp_path, monkeypatch):
    real = dec.decoded_batches

    def interrupted(split, **kwargs):
        yield next(iter(real(split, **kwargs)))
        raise KeyboardInterrupt

    monkeypatch.setattr(dec, "decoded_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        st.open_store(tree, image_size=32, input_config=_file_config(tmp_path))
    assert os.listdir(tmp_path / "stores") == []


@pytest.mark.backend_neutral
def test_a_full_disk_is_one_clear_error_and_no_file(
    tree, tmp_path, monkeypatch
):
    writes = []

    def full(handle, data):
        writes.append(len(data))
        if len(writes) == 2:  # the first image batch, after the preamble
            raise OSError(errno.ENOSPC, "No space left on device")
        handle.write(data)

    monkeypatch.setattr(sf, "_write_bytes", full)
    config = _file_config(tmp_path)
    with pytest.raises(DHSPSError) as caught:
        st.open_store(tree, image_size=32, input_config=config)
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "stores") in message and ".store" in message
    # 4096-byte preamble + 6 images x (32*32*3 + 64 bytes of trailer).
    needed = 4096 + 6 * (32 * 32 * 3 + 64)
    assert f"needs {needed / 1e9:.2f} GB" in message
    assert os.listdir(tmp_path / "stores") == []


@pytest.mark.backend_neutral
def test_too_little_free_space_fails_before_decoding(
    tree, tmp_path, monkeypatch, decodes
):
    class Usage:
        free = 1000

    monkeypatch.setattr(sf.shutil, "disk_usage", lambda _: Usage)
    with pytest.raises(DHSPSError, match=r"no space .* 0\.00 GB free"):
        st.open_store(tree, image_size=32, input_config=_file_config(tmp_path))
    assert decodes == []


@pytest.mark.backend_neutral
def test_temporary_files_of_dead_builds_are_removed(tree, tmp_path):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    config = _file_config(tmp_path)
    slot, _ = st.store_key(tree, resize="direct", size=(32, 32))
    stores = tmp_path / "stores"
    stores.mkdir()
    host = socket.gethostname()
    orphan = stores / f".{slot}.store.tmp-{host}-{dead.pid}-abcd"
    alive = stores / f".{slot}.store.tmp-{host}-{os.getpid()}-abcd"
    orphan.write_bytes(b"x")
    alive.write_bytes(b"x")
    st.open_store(tree, image_size=32, input_config=config)
    assert not orphan.exists()
    assert alive.exists()  # a build still running is left alone


def _with_bad_images(tree: Split, tmp_path) -> Split:
    garbage = tmp_path / "images" / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 this is not a JPEG")
    missing = str(tmp_path / "images" / "missing.jpg")
    paths = list(tree.paths)
    paths[1:1] = [str(garbage)]
    paths.append(missing)
    labels = np.arange(len(paths) * 2, dtype=np.uint8).reshape(-1, 2)
    return Split(labels=labels, paths=tuple(paths))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("budget", [0, 64])
def test_an_undecodable_image_is_one_line_naming_the_file(
    tree, tmp_path, budget
):
    split = _with_bad_images(tree, tmp_path)
    config = _config(tmp_path, memory_budget_mb=budget)
    with pytest.raises(DataError) as caught:
        st.open_store(split, image_size=32, input_config=config)
    message = str(caught.value)
    assert message.startswith(f"{split.paths[1]}: cannot decode image")
    assert "--skip-bad-images" in message and "\n" not in message
    stores = tmp_path / "stores"
    assert not stores.exists() or os.listdir(stores) == []


@pytest.mark.backend_neutral
@pytest.mark.parametrize("budget", [0, 64])
def test_bad_images_are_skipped_and_counted(tree, tmp_path, budget, decodes):
    split = _with_bad_images(tree, tmp_path)
    config = _config(tmp_path, memory_budget_mb=budget)
    store = st.open_store(
        split, image_size=32, input_config=config, skip_bad_images=True
    )
    assert len(store) == len(SIZES)
    assert [path for path, _ in store.skipped] == [
        split.paths[1],
        split.paths[-1],
    ]
    assert store.skipped[0][1].startswith("cannot decode image")
    assert store.skipped[1][1] == "image not found"
    kept = [0, *range(2, len(split) - 1)]
    np.testing.assert_array_equal(store.labels, split.labels[kept])
    _assert_close_to_reference(
        store.images, [_reference(p, "direct", (32, 32)) for p in tree.paths]
    )
    # The store remembers: reused with skipping, refused without.
    again = st.open_store(
        split, image_size=32, input_config=config, skip_bad_images=True
    )
    assert again.skipped == store.skipped and len(decodes) == 1
    with pytest.raises(DataError, match="garbage.jpg: cannot decode"):
        st.open_store(split, image_size=32, input_config=config)


# ----------------------------------------------------- in-memory splits
@pytest.mark.backend_neutral
def test_in_memory_images_at_the_stored_size_are_used_as_they_are(
    tmp_path, decodes
):
    images = np.random.default_rng(0).integers(0, 256, (5, 24, 24, 3))
    split = Split(
        labels=np.ones((5, 2), np.uint8), images=images.astype(np.uint8)
    )
    for store_mode in ("memory", "none"):
        config = _config(tmp_path, store=store_mode)
        store = st.open_store(split, image_size=24, input_config=config)
        assert store.images is split.images
    assert decodes == []


@pytest.mark.backend_neutral
@pytest.mark.parametrize("resize", MODES)
def test_in_memory_images_are_resized_once(tmp_path, resize, decodes):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 40, 3)).astype(np.uint8)
    split = Split(labels=np.ones((7, 1), np.uint8), images=images)
    config = _config(tmp_path, resize=resize)
    store = st.open_store(split, image_size=32, input_config=config)
    size = store.image_shape[:2]
    _assert_close_to_reference(
        store.images, [_reference(image, resize, size) for image in images]
    )
    st.open_store(split, image_size=32, input_config=config)
    assert decodes == [7]
    # The same pixels in another array are the same store.
    copy = Split(labels=split.labels, images=images.copy())
    st.open_store(copy, image_size=32, input_config=config)
    assert decodes == [7]


# ---------------------------------------------------------- store="none"
@pytest.mark.backend_neutral
def test_store_none_decodes_on_demand(tree, tmp_path, decodes):
    stored = st.open_store(tree, image_size=32, input_config=_config(tmp_path))
    config = _config(tmp_path, store="none")
    lazy = st.open_store(tree, image_size=32, input_config=config)
    assert lazy.images is None and len(lazy) == len(SIZES)
    assert lazy.image_shape == (32, 32, 3)
    indices = np.array([5, 1, 3])
    np.testing.assert_array_equal(lazy.read(indices), stored.read(indices))
    np.testing.assert_array_equal(lazy.read(indices), stored.read(indices))
    assert decodes == [len(SIZES), 3, 3]
    assert lazy.read(np.array([], np.int64)).shape == (0, 32, 32, 3)


@pytest.mark.backend_neutral
def test_store_none_raises_on_a_bad_image_when_read(tree, tmp_path):
    split = _with_bad_images(tree, tmp_path)
    config = _config(tmp_path, store="none")
    lazy = st.open_store(split, image_size=32, input_config=config)
    assert lazy.read(np.array([0, 2])).shape == (2, 32, 32, 3)
    with pytest.raises(DataError, match="missing.jpg: image not found"):
        lazy.read(np.array([0, len(split) - 1]))


# --------------------------------------------------- TF and Pillow paths
@pytest.mark.parametrize("resize", MODES)
@pytest.mark.parametrize("model_size", [32, 227])
def test_tensorflow_and_pillow_paths_build_identical_stores(
    tree, resize, model_size
):
    # Pillow decodes JPEGs as TensorFlow does (accurate IDCT) and the NumPy
    # resize repeats TensorFlow's float32 kernel: the same bytes, down- and
    # upscaled (227 enlarges every test image).
    pytest.importorskip("tensorflow")
    size = stored_size(model_size, resize=resize, resize_to=(236, 236))
    tf_failures, pil_failures = [], []
    from_tf = list(dec._tf_batches(tree.paths, resize, size, tf_failures, 4))
    from_pillow = list(
        dec._pillow_batches(tree.paths, resize, size, pil_failures, 4)
    )
    assert tf_failures == pil_failures == []
    for (tf_rows, tf_images), (pil_rows, pil_images) in zip(
        from_tf, from_pillow, strict=True
    ):
        np.testing.assert_array_equal(pil_rows, tf_rows)
        np.testing.assert_array_equal(pil_images, tf_images)


@pytest.mark.parametrize("library", ["tensorflow", "pillow"])
def test_read_image_files_reports_each_bad_file_once_by_position(
    tree, tmp_path, monkeypatch, library
):
    # One reader of image files for the store, `dhsps encode` and `dhsps
    # search`, with either library: the kept images in order, their
    # positions, and one reason per bad file (the one message owner's).
    if library == "tensorflow":
        pytest.importorskip("tensorflow")
    else:
        monkeypatch.setattr(dec, "tensorflow_or_none", lambda: None)
    split = _with_bad_images(tree, tmp_path)
    failures = []
    batches = list(
        dec.read_image_files(
            split.paths,
            resize="direct",
            size=(32, 32),
            failures=failures,
            batch_size=3,
        )
    )
    positions = np.concatenate([rows for rows, _ in batches])
    images = np.concatenate([pixels for _, pixels in batches])
    np.testing.assert_array_equal(positions, [0, *range(2, len(split) - 1)])
    assert images.shape == (len(SIZES), 32, 32, 3) and images.dtype == np.uint8
    assert [position for position, _ in failures] == [1, len(split) - 1]
    assert failures[0][1].startswith("cannot decode image (")
    assert failures[1][1] == dec.NOT_FOUND == "image not found"


def test_the_failure_messages_have_one_owner():
    assert dec.decode_failure() == "cannot decode image"
    assert dec.decode_failure("bad\nmore") == "cannot decode image (bad)"
    error = dec.bad_image_error("a.jpg", dec.decode_failure("truncated"))
    assert str(error) == (
        "a.jpg: cannot decode image (truncated) (pass skip_bad_images=True "
        "or --skip-bad-images to skip and count such images)"
    )


@settings(max_examples=150, deadline=None)
@given(
    in_shape=hs.tuples(hs.integers(1, 90), hs.integers(1, 90)),
    out_shape=hs.tuples(hs.integers(1, 90), hs.integers(1, 90)),
    resize=hs.sampled_from(MODES),
    seed=hs.integers(0, 2**16),
)
def test_the_numpy_resize_is_tensorflows_bit_for_bit(
    in_shape, out_shape, resize, seed
):
    # Any sizes, down and up, 1-pixel edges included; the cropping mode
    # keeps a square of the shorter side, as stored_size makes it.
    tf = pytest.importorskip("tensorflow")
    if resize == "shorter_side_crop":
        out_shape = (out_shape[0], out_shape[0])
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*in_shape, 3), dtype=np.uint8)
    expected = dec.resize_images(
        tf.constant(pixels), resize=resize, size=out_shape
    ).numpy()
    twin = dec._numpy_resize(pixels, resize=resize, size=out_shape)
    assert twin.dtype == np.uint8 and twin.shape == (*out_shape, 3)
    np.testing.assert_array_equal(twin, expected)


def test_tensorflow_decodes_jpegs_as_pillow_does(tree):
    tf = pytest.importorskip("tensorflow")
    for path in tree.paths:
        decoded = dec.decode_image(tf.io.read_file(path)).numpy()
        with Image.open(path) as image:
            np.testing.assert_array_equal(
                decoded, np.asarray(image.convert("RGB"))
            )


def test_resize_images_takes_a_batch_like_the_export_endpoint(tree):
    tf = pytest.importorskip("tensorflow")
    with Image.open(tree.paths[0]) as image:
        pixels = np.asarray(image.convert("RGB"))
    batch = tf.constant(np.stack([pixels, pixels[::-1]]))
    for resize in MODES:
        out = dec.resize_images(batch, resize=resize, size=(36, 36))
        assert out.dtype == tf.uint8 and out.shape == (2, 36, 36, 3)
        one = dec.resize_images(batch[0], resize=resize, size=(36, 36))
        np.testing.assert_array_equal(out[0].numpy(), one.numpy())


NO_TF_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None
    import numpy as np
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data import decoding as dec
    from keras_dhsps.data import store as st
    from keras_dhsps.data.base import Split

    dec.IN_PROCESS_MAX = 0  # use the worker pool even for a few images
    dec.CHUNK_IMAGES = 2
    paths, out, store_dir = json.loads(sys.argv[1])
    split = Split(labels=np.ones((len(paths), 1), np.uint8), paths=paths)
    results = {}
    for budget in (0, 64):
        config = InputConfig(memory_budget_mb=budget, store_dir=store_dir)
        store = st.open_store(
            split, image_size=32, input_config=config, skip_bad_images=True
        )
        results[budget] = np.asarray(store.images)
        skipped = [path for path, _ in store.skipped]
    assert dec.tensorflow_or_none() is None
    assert "keras" not in sys.modules, "the store must not import keras"
    np.save(out, results[0])
    assert np.array_equal(results[0], results[64])
    print(json.dumps(skipped))
    """
)


@pytest.mark.backend_neutral
def test_without_tensorflow_pillow_workers_build_the_same_store(tree, tmp_path):
    split = _with_bad_images(tree, tmp_path)
    out = str(tmp_path / "no_tf.npy")
    arguments = json.dumps([list(split.paths), out, str(tmp_path / "nt")])
    result = run_python(NO_TF_SCRIPT, arguments, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [
        split.paths[1],
        split.paths[-1],
    ]
    from_pillow = np.load(out)
    _assert_close_to_reference(
        from_pillow,
        [_reference(p, "direct", (32, 32)) for p in tree.paths],
    )
