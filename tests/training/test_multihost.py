"""Training across processes with JAX: two processes on localhost CPUs
(JAX's gloo collectives) take the one-process step on the same global
batch; ``dhsps train --distribution data_parallel`` writes the run from
process 0 alone; bad set-ups get one error line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from keras_dhsps.cli.main import main
from tests.paths import REPO
from tests.training.test_distribute import TINY_DATA

pytest.importorskip("jax")
pytest.importorskip("tensorflow")

#: Each process: join, then one SGD step (rate 1: the update is the
#: gradient) on a tf.data batch of 8 that Keras shards 4 + 4 by process;
#: then the same step with no distribution, on all 8 rows, as reference.
STEP = textwrap.dedent(
    """
    import json
    import sys
    from keras_dhsps.training.multihost import is_chief, start_data_parallel
    distribution = start_data_parallel(sys.argv[1], 2, int(sys.argv[2]),
                                       timeout_s=120)
    import jax
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_dhsps.losses import IDHNLoss
    #TINY_DATA

    def data():
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def step():
        model = build()
        model.compile(keras.optimizers.SGD(1.0), IDHNLoss())
        before = [np.array(v) for v in model.trainable_variables]
        logs = model.fit(data(), epochs=1, verbose=0, shuffle=False).history
        after = [np.array(v) for v in model.trainable_variables]
        return logs["loss"][0], [b - a for b, a in zip(before, after)]

    (rows, _), = distribution.distribute_dataset(data()).take(1)
    loss, grads = step()
    keras.distribution.set_distribution(None)
    ref_loss, ref_grads = step()
    half = slice(4 * jax.process_index(), 4 * jax.process_index() + 4)
    print("RESULT " + json.dumps({
        "chief": is_chief(),
        "devices": len(jax.devices()), "local": len(jax.local_devices()),
        "rows": int(rows.shape[0]),
        "loss": loss, "ref_loss": ref_loss,
        "grads_close": all(np.allclose(g, r, rtol=1e-5, atol=1e-6)
                           for g, r in zip(grads, ref_grads)),
        "max_grad": max(float(np.abs(g).max()) for g in grads),
        # Control: this process's rows alone give another loss.
        "own_rows_loss": float(IDHNLoss()(y[half], build()(x[half]))),
    }))
    """
).replace("#TINY_DATA\n", TINY_DATA)

TINY_RUN = [
    "--dataset",
    "digits-mosaic",
    "--bits",
    "8",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--set",
    'data.options={"num_train": 32, "num_validation": 8, '
    '"num_query": 8, "num_database": 16}',
    "--set",
    "train.tensorboard=false",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def environment():
    return dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
    )


def run_processes(commands, timeout=240):
    """Starts every command at once; their ``(status, stdout, stderr)``."""
    started = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for process in started:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in started:
                other.kill()
            raise
        results.append((process.returncode, out, err))
    return results


def result_of(done):
    status, out, err = done
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert status == 0 and lines, err[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_processes_take_the_one_process_step():
    address = f"localhost:{free_port()}"
    outs = [
        result_of(done)
        for done in run_processes(
            [[sys.executable, "-c", STEP, address, str(i)] for i in (0, 1)]
        )
    ]
    assert [out["chief"] for out in outs] == [True, False]
    for out in outs:
        assert out["devices"] == 2 and out["local"] == 1
        assert out["rows"] == 4  # each process feeds half the global batch
        assert out["loss"] == pytest.approx(out["ref_loss"], rel=1e-5)
        assert out["grads_close"], out
        assert out["max_grad"] > 1e-4
        assert abs(out["own_rows_loss"] - out["ref_loss"]) > 1e-3


def test_train_command_writes_the_run_from_process_zero(tmp_path):
    output = str(tmp_path / "run")
    address = f"localhost:{free_port()}"
    command = [sys.executable, "-m", "keras_dhsps", "--verbose", "0", "train"]
    multihost = ["--distribution", "data_parallel", "--coordinator", address]
    multihost += ["--num-processes", "2", "--output", output]
    chief, worker = run_processes(
        [
            [*command, *TINY_RUN, *multihost, "--process-id", str(i)]
            for i in (0, 1)
        ]
    )
    assert chief[0] == 0, chief[2][-3000:]
    assert worker[0] == 0, worker[2][-3000:]
    assert "process 0 writes the run directory" in worker[1]
    assert f"wrote {output}" in chief[1]
    names = set(os.listdir(output))
    assert {
        "config.json",
        "model.keras",
        "history.json",
        "report.json",
    } <= names
    with open(os.path.join(output, "history.json")) as handle:
        history = json.load(handle)
    assert "loss" in json.dumps(history)
    with open(os.path.join(output, "config.json")) as handle:
        assert json.load(handle)["train"]["validation_every"] == 0


def error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_a_process_id_out_of_range_is_one_line(tmp_path, capsys):
    args = ["train", *TINY_RUN, "--output", str(tmp_path / "run")]
    args += ["--distribution", "data_parallel", "--num-processes", "2"]
    assert main([*args, "--process-id", "2"]) == 2
    assert "--process-id 2 is out of range" in error_line(capsys)
    assert not os.listdir(tmp_path)


def test_another_backend_is_refused(tmp_path, capsys, monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    args = ["train", *TINY_RUN, "--output", str(tmp_path / "run")]
    assert main([*args, "--distribution", "data_parallel"]) == 2
    assert "needs KERAS_BACKEND=jax" in error_line(capsys)


def test_a_coordinator_that_never_answers_times_out_in_one_line(tmp_path):
    address = f"localhost:{free_port()}"  # nobody listens there
    args = ["train", *TINY_RUN, "--output", str(tmp_path / "run")]
    args += ["--distribution", "data_parallel", "--coordinator", address]
    args += ["--num-processes", "2", "--process-id", "1"]
    args += ["--coordinator-timeout", "2"]
    ((status, out, err),) = run_processes(
        [[sys.executable, "-m", "keras_dhsps", *args]], timeout=120
    )
    assert status == 2, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and "did not answer within 2 s" in line
    assert not os.path.exists(tmp_path / "run")
