"""MirroredStrategy over two logical CPUs equals one device on the same
global batch (the pairwise loss sees every pair)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.child import run_python
from tests.paths import REPO

# The problem every script solves: 8 rows whose labels give hard-similar,
# hard-dissimilar and soft pairs, including pairs split across the two
# replicas, workers or devices (rows 0-3 and 4-7), and a two-layer hasher
# (TINY_DATA: needs keras and numpy imported before it). TINY_PROBLEM adds
# the TensorFlow scripts' reference, the loss and gradients of one device
# on the whole batch (needs tensorflow and IDHNLoss too).
TINY_DATA = textwrap.dedent(
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1],
                  [1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]], "float32")

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,))
        h = keras.layers.Dense(5, activation="tanh", name="fc")(inputs)
        out = keras.layers.Dense(4, activation="tanh", name="hash_layer")(h)
        return keras.Model(inputs, out)
    """
)

TINY_PROBLEM = TINY_DATA + textwrap.dedent(
    """
    def reference():
        model = build()
        with tf.GradientTape() as tape:
            loss = IDHNLoss()(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), [g.numpy() for g in grads]
    """
)

# Logical devices must be configured before TensorFlow initializes, so the
# comparison runs in a fresh interpreter.
SCRIPT = textwrap.dedent(
    """
    import json
    import os
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keras_dhsps.config import DataConfig, ExperimentConfig
    from keras_dhsps.config import ModelConfig, TrainConfig
    from keras_dhsps.data import load_dataset
    from keras_dhsps.training.distribution import GlobalBatchLoss, make_strategy
    from keras_dhsps.losses import IDHNLoss
    from keras_dhsps.training.fit import fit

    #TINY_PROBLEM

    def mirrored_step(wrap):
        strategy = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = build()
            loss = GlobalBatchLoss(IDHNLoss()) if wrap else IDHNLoss()
            model.compile(keras.optimizers.SGD(1.0), loss, jit_compile=False)
            # As train.fit does: an optimizer built before the first step.
            model.optimizer.build(model.trainable_variables)
        before = [v.numpy() for v in model.trainable_variables]
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        logs = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        after = [v.numpy() for v in model.trainable_variables]
        # SGD with rate 1: w' = w - g.
        grads = [b - a for b, a in zip(before, after)]
        return logs["loss"][0], grads, strategy.num_replicas_in_sync

    def close(a, b):
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))

    ref_loss, ref_grads = reference()
    out = {"replicas": None}
    for wrap in (True, False):
        loss, grads, out["replicas"] = mirrored_step(wrap)
        out[f"loss_{wrap}"] = loss
        out[f"loss_close_{wrap}"] = close(loss, ref_loss)
        out[f"grads_close_{wrap}"] = all(
            close(g, r) for g, r in zip(grads, ref_grads))
        out[f"max_grad_{wrap}"] = max(float(np.abs(g).max()) for g in grads)
    out["ref_loss"] = ref_loss

    # The training entry point runs under the strategy too.
    dataset = load_dataset("digits-mosaic", num_train=32, num_validation=8,
                           num_query=8, num_database=16)
    config = ExperimentConfig(model=ModelConfig(bits=8),
                              train=TrainConfig(epochs=1, batch_size=16))
    result = fit(config, dataset=dataset, verbose=0,
                 strategy=make_strategy("mirrored", ["/cpu:0", "/cpu:1"]))
    out["fit_loss"] = result.history["loss"][0]
    out["fit_iterations"] = int(result.model.optimizer.iterations.numpy())
    print("RESULT " + json.dumps(out))
    """
).replace("#TINY_PROBLEM\n", TINY_PROBLEM)


@pytest.fixture(scope="module")
def result():
    completed = run_python(
        SCRIPT, env={"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    )
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_replicas_equal_one_device(result):
    assert result["replicas"] == 2
    assert result["loss_close_True"], result
    assert result["grads_close_True"], result
    assert result["max_grad_True"] > 1e-4  # the step did something


def test_per_replica_loss_would_differ(result):
    # Control: without gathering, each replica sees 4 images and 16 pairs
    # instead of 8 and 64; loss and gradients differ from one device.
    assert not result["loss_close_False"], result
    assert not result["grads_close_False"], result


def test_fit_accepts_a_strategy(result):
    assert result["fit_iterations"] == 2  # 32 images / global batch 16
    assert 0.0 < result["fit_loss"] < 10.0


@pytest.mark.backend_neutral
def test_global_batch_loss_is_the_wrapped_loss_on_one_device():
    import keras
    import numpy as np

    from keras_dhsps.losses import IDHNLoss
    from keras_dhsps.training.distribution import GlobalBatchLoss

    rng = np.random.default_rng(0)
    labels = (rng.random((6, 4)) < 0.5).astype("float32")
    labels[:, 0] = 1.0
    codes = np.tanh(rng.normal(size=(6, 8))).astype("float32")
    inner = IDHNLoss(beta=3.0)
    wrapped = GlobalBatchLoss(inner)
    assert float(wrapped(labels, codes)) == pytest.approx(
        float(inner(labels, codes)), rel=1e-6
    )
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(wrapped)
    )
    assert isinstance(revived, GlobalBatchLoss)
    assert isinstance(revived.loss, IDHNLoss) and revived.loss.beta == 3.0
    assert float(revived(labels, codes)) == pytest.approx(
        float(inner(labels, codes)), rel=1e-6
    )


@pytest.mark.backend_neutral
def test_make_strategy_rejects_unknown_names():
    from keras_dhsps.training.distribution import make_strategy
    from keras_dhsps.utils.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="mirrored"):
        make_strategy("tpu")


def _run_script(script, env_extra, timeout=300):
    """Runs ``script`` in a fresh interpreter; its ``RESULT {json}`` line."""
    completed = run_python(
        script, env={"CUDA_VISIBLE_DEVICES": "", **env_extra}, timeout=timeout
    )
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    from keras_dhsps.training.distribution import GlobalBatchLoss, make_strategy
    from keras_dhsps.utils.errors import DHSPSError
    from keras_dhsps.losses import IDHNLoss

    out = {"tf_imported": "tensorflow" in sys.modules}

    def refusal(name):
        try:
            make_strategy(name)
        except DHSPSError as error:
            return str(error)
        return None

    # TensorFlow installed, but Keras runs on JAX.
    out["other_backend"] = refusal("mirrored")
    sys.modules["tensorflow"] = None  # TensorFlow made unimportable
    out["no_tf"] = [refusal(n) for n in ("mirrored", "multi_worker_mirrored")]
    out["default"] = repr(make_strategy("default"))
    rng = np.random.default_rng(0)
    labels = (rng.random((6, 4)) < 0.5).astype("float32")
    codes = np.tanh(rng.normal(size=(6, 8))).astype("float32")
    out["wrapped"] = float(GlobalBatchLoss(IDHNLoss())(labels, codes))
    out["plain"] = float(IDHNLoss()(labels, codes))
    print("RESULT " + json.dumps(out))
    """
)


def test_strategies_without_tensorflow_say_what_to_install():
    out = _run_script(WITHOUT_TENSORFLOW, {"KERAS_BACKEND": "jax"})
    assert out["tf_imported"] is False  # imported only when used
    assert "KERAS_BACKEND=jax" in out["other_backend"]
    for message in out["no_tf"]:
        assert message.startswith("strategy '")
        assert "needs TensorFlow" in message
        assert "pip install 'keras_dhsps[gpu]'" in message
        assert "\n" not in message
    assert out["default"] == "None"  # no distribution, nothing refused
    assert out["wrapped"] == pytest.approx(out["plain"], rel=1e-6)


JAX_DATA_PARALLEL = textwrap.dedent(
    """
    import json
    import jax
    import keras
    import numpy as np
    from keras_dhsps.losses import IDHNLoss
    #TINY_DATA

    def step():
        # SGD with rate 1: w' = w - g, so the update is the gradient.
        model = build()
        model.compile(keras.optimizers.SGD(1.0), IDHNLoss())
        before = [np.array(v) for v in model.trainable_variables]
        logs = model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                         shuffle=False).history
        after = [np.array(v) for v in model.trainable_variables]
        return logs["loss"][0], [b - a for b, a in zip(before, after)], model

    ref_loss, ref_grads, _ = step()
    distribution = keras.distribution.DataParallel(devices=jax.devices())
    keras.distribution.set_distribution(distribution)
    loss, grads, model = step()
    layout = distribution.get_data_layout((8, 6))
    sharded = jax.device_put(x, layout.backend_layout)
    out = {
        "devices": len(jax.devices()),
        "rows_per_device": sorted(
            s.data.shape[0] for s in sharded.addressable_shards),
        "weight_devices": len(model.trainable_variables[0].value.devices()),
        "loss": loss, "ref_loss": ref_loss,
        "grads_close": all(np.allclose(g, r, rtol=1e-5, atol=1e-6)
                           for g, r in zip(grads, ref_grads)),
        "max_grad": max(float(np.abs(g).max()) for g in grads),
        # Control: the mean of two per-device losses on 4 rows each.
        "per_device_loss": float(np.mean([
            IDHNLoss()(y[:4], model(x[:4])), IDHNLoss()(y[4:], model(x[4:]))
        ])),
        "global_loss_after": float(IDHNLoss()(y, model(x))),
    }
    print("RESULT " + json.dumps(out))
    """
).replace("#TINY_DATA\n", TINY_DATA)


def test_jax_data_parallel_step_equals_one_device():
    pytest.importorskip("jax")
    out = _run_script(
        JAX_DATA_PARALLEL,
        {
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
    )
    assert out["devices"] == 2
    assert out["rows_per_device"] == [4, 4]  # the batch is split
    assert out["weight_devices"] == 2  # weights replicated on both
    assert out["loss"] == pytest.approx(out["ref_loss"], rel=1e-5)
    assert out["grads_close"], out
    assert out["max_grad"] > 1e-4
    # Two per-device losses would train another objective.
    assert abs(out["per_device_loss"] - out["global_loss_after"]) > 1e-3


# One worker of a two-process MultiWorkerMirroredStrategy cluster; argv[1]
# is its index. The strategy must exist before any other TensorFlow op.
MULTI_WORKER = textwrap.dedent(
    """
    import json
    import sys
    from keras_dhsps.training.distribution import GlobalBatchLoss, make_strategy
    strategy = make_strategy("multi_worker_mirrored")
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_dhsps.losses import IDHNLoss

    worker = int(sys.argv[1])
    #TINY_PROBLEM

    def own_half(context):
        # Each worker feeds its own 4 rows: worker 0 rows 0-3, worker 1 4-7.
        rows = slice(4 * context.input_pipeline_id,
                     4 * context.input_pipeline_id + 4)
        return tf.data.Dataset.from_tensor_slices((x[rows], y[rows])).batch(4)

    ref_loss, ref_grads = reference()
    with strategy.scope():
        model = build()
        model.optimizer = keras.optimizers.SGD(1.0)
        model.optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    # Keras 3.15.1's fit fails under this strategy before the first step
    # (_maybe_symbolic_build reduces the first distributed batch eagerly,
    # which MultiWorkerMirroredStrategy refuses; its train function then
    # reduces the scalar loss along axis 0). The step is written out as
    # Keras' train_step computes it: each replica's loss (Keras' Loss scales
    # it by 1/R under a strategy), gradients summed across replicas by the
    # optimizer.
    loss_fn = GlobalBatchLoss(IDHNLoss())

    @tf.function
    def step(iterator):
        def replica_step(batch):
            images, labels = batch
            with tf.GradientTape() as tape:
                scaled = loss_fn(labels, model(images, training=True))
            grads = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply(grads, model.trainable_variables)
            context = tf.distribute.get_replica_context()
            return context.all_reduce("SUM", scaled), tf.shape(images)[0]

        return strategy.run(replica_step, args=(next(iterator),))

    data = strategy.distribute_datasets_from_function(own_half)
    loss, rows = step(iter(data))
    rows = int(strategy.experimental_local_results(rows)[0])
    loss = strategy.experimental_local_results(loss)[0]
    logs = {"loss": [float(loss)]}
    after = [v.numpy() for v in model.trainable_variables]
    grads = [b - a for b, a in zip(before, after)]  # SGD, rate 1
    print("RESULT " + json.dumps({
        "worker": worker,
        "replicas": strategy.num_replicas_in_sync,
        "rows": rows,
        "loss": logs["loss"][0], "ref_loss": ref_loss,
        "grads_close": all(np.allclose(g, r, rtol=1e-5, atol=1e-6)
                           for g, r in zip(grads, ref_grads)),
        "max_grad": max(float(np.abs(g).max()) for g in grads),
        # Control: worker 0's rows alone give another loss.
        "half_loss": float(IDHNLoss()(y[:4], build()(x[:4]))),
    }))
    """
).replace("#TINY_PROBLEM\n", TINY_PROBLEM)


def _free_ports(count):
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("localhost", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_multi_worker_step_equals_one_process():
    repo = REPO
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": cluster,
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_CONFIG=json.dumps(tf_config),
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", MULTI_WORKER, str(index)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=repo,
            )
        )
    results = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=240)
            lines = [
                line
                for line in stdout.splitlines()
                if line.startswith("RESULT ")
            ]
            assert worker.returncode == 0 and lines, stderr[-4000:]
            results.append(json.loads(lines[-1][len("RESULT ") :]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for out in results:
        assert out["replicas"] == 2 and out["rows"] == 4
        assert out["loss"] == pytest.approx(out["ref_loss"], rel=1e-5), str(out)
        assert out["grads_close"], out
        assert out["max_grad"] > 1e-4
        assert abs(out["half_loss"] - out["ref_loss"]) > 1e-3
    assert sorted(out["worker"] for out in results) == [0, 1]
