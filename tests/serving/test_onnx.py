"""dhsps export --format onnx|litert: files whose codes are the Keras
hasher's, an ONNX hasher opened by load_hasher without TensorFlow, and one
error line for what cannot be exported or loaded."""

from __future__ import annotations

import json
import os
import re

import keras
import numpy as np
import pytest

from keras_dhsps.cli.main import main
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.serving import export as export_module
from keras_dhsps.serving.export import export_hasher
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.serving.onnx import METADATA_KEY
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError
from tests.paths import FIXTURES
from tests.training_helpers import run_without_tensorflow

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

KERAS_FILE = os.path.join(FIXTURES, "hasher_c7958a9.keras")  # 16 bits, 32x32
#: A cropping mode: the caller resizes to 40x40, then keeps the centre.
RESIZE = dict(resize="resize_crop", resize_to=(40, 40))


def images(count=6, size=(45, 52), seed=0):
    generator = np.random.default_rng(seed)
    return generator.integers(0, 256, (count, *size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def keras_hasher():
    return load_hasher(KERAS_FILE, **RESIZE)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, keras_hasher):
    path = str(tmp_path_factory.mktemp("onnx") / "hasher.onnx")
    export_hasher(keras_hasher.model, path, format="onnx", **RESIZE)
    return path


def assert_same_codes(got, expected):
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(pack_codes(got), pack_codes(expected))


def test_onnx_hasher_gives_the_keras_codes(onnx_file, keras_hasher):
    hasher = load_hasher(onnx_file)
    assert hasher.kind == "onnx" and hasher.model is None
    assert hasher.bits == 16 and hasher.image_size == (32, 32)
    assert hasher.stored_size == (40, 40)
    assert hasher.metadata["export_format"] == "onnx"
    x = images()
    # The model itself takes uint8 at its size: the caller's resize and
    # centre crop are exactly LoadedHasher.preprocess's.
    np.testing.assert_array_equal(
        hasher.preprocess(x), keras_hasher.preprocess(x).astype(np.uint8)
    )
    assert_same_codes(hasher.codes(x), keras_hasher.codes(x))
    (served,) = hasher.session.run(None, {"images": hasher.preprocess(x)})
    assert_same_codes(served, keras_hasher.codes(x))


def test_onnx_file_carries_its_metadata(onnx_file):
    import onnx

    props = {p.key: p.value for p in onnx.load(onnx_file).metadata_props}
    metadata = json.loads(props[METADATA_KEY])
    assert metadata["bits"] == 16 and metadata["resize"] == "resize_crop"
    assert metadata["resize_to"] == [40, 40]
    assert metadata["input_dtype"] == "uint8"


def test_litert_file_gives_the_keras_codes(tmp_path, keras_hasher):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    path = str(tmp_path / "hasher.tflite")
    export_hasher(keras_hasher.model, path, format="litert", **RESIZE)
    metadata = json.loads((tmp_path / "hasher.tflite.json").read_text())
    assert metadata["export_format"] == "litert"
    assert sorted(os.listdir(tmp_path)) == [
        "hasher.tflite",
        "hasher.tflite.json",
    ]
    x = keras_hasher.preprocess(images()).astype(np.uint8)
    interpreter = interpreter_module.Interpreter(model_path=path)
    (entry,) = interpreter.get_input_details()
    assert entry["dtype"] == np.uint8
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert_same_codes(out, keras_hasher.codes_from_preprocessed(x))


def test_the_onnx_hasher_loads_and_encodes_without_tensorflow(
    onnx_file, keras_hasher
):
    x = images(seed=5)
    script = (
        "import _block_tensorflow, json, sys\n"
        "import numpy as np\n"
        "import keras_dhsps\n"
        f"hasher = keras_dhsps.load_hasher({onnx_file!r})\n"
        "x = np.random.default_rng(5).integers(0, 256, (6, 45, 52, 3), "
        "dtype=np.uint8)\n"
        "codes = hasher.codes(x)\n"
        "print(json.dumps({'codes': codes.tolist(), 'modules': ["
        "name for name in ('tensorflow', 'keras') if name in sys.modules]}))\n"
    )
    done = run_without_tensorflow(script, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["modules"] == []  # neither TensorFlow nor Keras was needed
    assert_same_codes(
        np.asarray(out["codes"], np.float32), keras_hasher.codes(x)
    )


def test_export_help_and_refusal_without_tensorflow(tmp_path):
    output = str(tmp_path / "h.onnx")
    script = (
        "import _block_tensorflow\n"
        "from keras_dhsps.cli.main import main\n"
        "import contextlib, io\n"
        "help_text = io.StringIO()\n"
        "with contextlib.redirect_stdout(help_text):\n"
        "    status = main(['export', '--help'])\n"
        "assert status == 0, status\n"
        "assert '--format' in help_text.getvalue(), help_text.getvalue()\n"
        f"print(main(['export', {KERAS_FILE!r}, '--format', 'onnx', "
        f"'-o', {output!r}]))\n"
    )
    done = run_without_tensorflow(script, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "2"
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "TensorFlow" in line
    assert not os.listdir(tmp_path)


def test_cli_exports_onnx_that_encode_reads(onnx_file, tmp_path, capsys):
    from PIL import Image

    output = str(tmp_path / "cli.onnx")
    args = ["--verbose", "0", "export", KERAS_FILE, "--format", "onnx"]
    assert main([*args, "-o", output]) == 0
    assert "wrote" in capsys.readouterr().out
    folder = tmp_path / "images"
    folder.mkdir()
    for number, image in enumerate(images(4, (32, 32), seed=2)):
        Image.fromarray(image).save(folder / f"im{number}.png")
    databases = []
    for model in (output, KERAS_FILE):
        databases.append(str(tmp_path / f"{len(databases)}.h5"))
        encode = ["--verbose", "0", "encode", model, str(folder)]
        assert main([*encode, "-o", databases[-1], "--store-relaxed"]) == 0
    onnx_db, keras_db = (read_code_database(d, relaxed=True) for d in databases)
    np.testing.assert_array_equal(onnx_db.packed, keras_db.packed)
    np.testing.assert_allclose(onnx_db.relaxed, keras_db.relaxed, atol=1e-5)
    # An existing file is kept without --overwrite.
    assert main([*args, "-o", output]) == 2
    assert "already exists" in capsys.readouterr().err


def error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_an_onnx_file_that_is_not_a_hasher_is_refused(tmp_path, capsys):
    import onnx
    from onnx import TensorProto
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    plain = str(tmp_path / "plain.onnx")
    onnx.save(helper.make_model(graph), plain)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    from PIL import Image

    images_dir = tmp_path / "images"
    images_dir.mkdir()
    Image.fromarray(images(1, (32, 32))[0]).save(images_dir / "im.png")
    for model, reason in (
        (plain, "not a keras_dhsps hasher"),
        (str(garbage), "cannot load ONNX model"),
    ):
        out = str(tmp_path / "codes.h5")
        assert main(["encode", model, str(images_dir), "-o", out]) == 2
        assert reason in error_line(capsys)
        with pytest.raises(DHSPSError, match=reason):
            load_hasher(model)
    assert not (tmp_path / "codes.h5").exists()


@pytest.mark.parametrize(
    "format, output, backend, reason",
    [
        ("onnx", "h.tflite", "tensorflow", "name it \\*.onnx"),
        ("litert", "h.onnx", "tensorflow", "name it \\*.tflite"),
        ("onnx", "h.onnx", "jax", "KERAS_BACKEND=jax"),
        ("litert", "h.tflite", "torch", "KERAS_BACKEND=torch"),
    ],
)
def test_formats_this_backend_cannot_write_are_refused_first(
    tmp_path, capsys, monkeypatch, format, output, backend, reason
):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    args = ["export", KERAS_FILE, "--format", format]
    assert main([*args, "-o", str(tmp_path / output)]) == 2
    assert re.search(reason, error_line(capsys))
    assert not os.listdir(tmp_path)


def test_a_failed_conversion_leaves_nothing(
    tmp_path, keras_hasher, monkeypatch
):
    def half_written(model, path, metadata):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_module, "_write_onnx", half_written)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_hasher(
            keras_hasher.model, str(tmp_path / "h.onnx"), format="onnx"
        )
    assert not os.listdir(tmp_path)
