"""Custom layers for the backbones: LRN and in-model input preprocessing.

All maths is ``keras.ops``, so the layers run under the TensorFlow, JAX and
PyTorch backends; each is a registered serializable with a full
``get_config``, so models that use them reload with ``safe_mode=True``.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_dhsps")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalization (AlexNet's LRN).

    For channels-last inputs ``a`` this computes, per position and channel c,
    ``b_c = a_c / (bias + alpha · Σ_{c'=c−r}^{c+r} a_{c'}²) ** beta``, with the
    sum clipped at the channel edges. This is TensorFlow's convention
    (``tf.nn.local_response_normalization(depth_radius=r, alpha=alpha, ...)``)
    in which ``alpha`` is *not* divided by the window size. Caffe writes
    ``b = a / (k + α/n · Σ a²)^β`` with ``n = local_size``; the two agree when
    ``depth_radius = (local_size − 1) / 2`` and ``alpha = α_caffe / n``.
    ``bvlc_alexnet`` (Caffe: ``local_size=5, alpha=1e-4, beta=0.75, k=1``)
    is therefore ``depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0`` here,
    exactly the values of Kratzert's TensorFlow AlexNet that converted the
    ``bvlc_alexnet.npy`` weights (and that the IDHN authors used). Use
    :meth:`from_caffe` to pass Caffe's parameters unchanged.

    The window sum is a matmul with a constant ``C×C`` band matrix, and the
    layer computes in float32 whatever its dtype policy: squared activations
    of conv1 on mean-subtracted pixels overflow float16.

    Args:
        depth_radius: r, half-width of the channel window (window 2r + 1).
        alpha: scale of the sum of squares (TensorFlow convention).
        beta: exponent.
        bias: additive constant k.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ...).

    Example:
    >>> layer = keras_dhsps.models.layers.LocalResponseNormalization(
    ...     depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)
    >>> y = layer(np.ones((1, 4, 4, 96), "float32"))

    Reference:
        Krizhevsky et al., "ImageNet Classification with Deep Convolutional
        Neural Networks", NeurIPS 2012, §3.3.
    """

    def __init__(
        self, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0, **kwargs
    ):
        super().__init__(**kwargs)
        if int(depth_radius) < 0:
            raise ValueError(
                "`depth_radius` must be >= 0. "
                f"Received: depth_radius={depth_radius}"
            )
        self.depth_radius = int(depth_radius)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = float(bias)
        self._band = None

    @classmethod
    def from_caffe(cls, local_size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        """The layer that equals Caffe's ``LRN`` with these parameters.

        Raises:
            ValueError: ``local_size`` is even (Caffe requires it odd).
        """
        if int(local_size) % 2 != 1:
            raise ValueError(
                f"`local_size` must be odd. Received: local_size={local_size}"
            )
        return cls(
            depth_radius=(int(local_size) - 1) // 2,
            alpha=float(alpha) / int(local_size),
            beta=beta,
            bias=k,
            **kwargs,
        )

    def build(self, input_shape):
        channels = int(input_shape[-1])
        index = np.arange(channels)
        band = np.abs(index[:, None] - index[None, :]) <= self.depth_radius
        self._band = band.astype("float32")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        band = ops.convert_to_tensor(self._band)
        square_sum = ops.matmul(ops.square(x), band)
        scale = ops.power(self.bias + self.alpha * square_sum, -self.beta)
        return ops.cast(x * scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth_radius": self.depth_radius,
                "alpha": self.alpha,
                "beta": self.beta,
                "bias": self.bias,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dhsps")
class ReverseChannels(keras.layers.Layer):
    """Reverses the last axis: RGB images become BGR (and back).

    Caffe-trained weights (``bvlc_alexnet``, keras.applications' VGG and
    ResNet50) expect BGR input; the pipeline yields RGB.

    Example:
    >>> keras_dhsps.models.layers.ReverseChannels()(np.array([[1.0, 2.0, 3.0]]))
    array([[3., 2., 1.]])
    """

    def call(self, inputs):
        return ops.flip(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_dhsps")
class SubtractMean(keras.layers.Layer):
    """Subtracts a fixed per-channel mean: ``y[..., c] = x[..., c] − mean[c]``.

    Args:
        mean: one value per channel, in the channel order of the input.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Example:
    >>> keras_dhsps.models.layers.SubtractMean([104.0, 117.0, 123.0])(
    ...     np.full((1, 3), 128.0))
    array([[24., 11.,  5.]])
    """

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(value) for value in mean]

    def call(self, inputs):
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        return ops.cast(inputs, self.compute_dtype) - mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean)})
        return config


@keras.saving.register_keras_serializable(package="keras_dhsps")
class GroupedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose ``groups`` run as separate convolutions.

    Same arguments, weights and layout as ``Conv2D`` (the kernel is
    ``(kh, kw, in_channels / groups, filters)``, group g owning input
    channels and filters ``[g·n, (g+1)·n)``: the ``bvlc_alexnet.npy`` layout),
    so it is a drop-in replacement. With ``groups > 1`` it splits the input
    and the kernel along channels, convolves each pair and concatenates,
    as Caffe and Kratzert's AlexNet do. TensorFlow's CPU kernel for grouped
    convolution is about 60× slower than this (3.2 s vs 0.05 s for a
    forward and backward pass of AlexNet's conv2 at batch 8), and on a GPU
    the split costs little.

    Example:
    >>> layer = keras_dhsps.models.layers.GroupedConv2D(256, 5, groups=2,
    ...                                          padding="same")
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        outputs = [
            super(GroupedConv2D, self).convolution_op(x, k)
            for x, k in zip(
                ops.split(inputs, self.groups, axis=axis),
                ops.split(kernel, self.groups, axis=-1),
                strict=True,
            )
        ]
        return ops.concatenate(outputs, axis=axis)


__all__ = [
    "GroupedConv2D",
    "LocalResponseNormalization",
    "ReverseChannels",
    "SubtractMean",
]


@keras.saving.register_keras_serializable(package="keras_dhsps")
class CropImages(keras.layers.Layer):
    """Crops ``(B, H, W, C)`` images to ``(height, width)`` inside the model.

    Training with ``random=True`` takes a random window per image (seeded
    by a ``SeedGenerator``, whose state :mod:`keras_dhsps.training.callbacks`
    checkpoints, so a resumed run draws the windows of an uninterrupted
    one); otherwise, and always at inference, the centre window (offsets
    ``(H - height) // 2`` and ``(W - width) // 2``, as
    ``keras_dhsps.data.tfdata_reader.center_crop``). Unlike
    ``keras.layers.RandomCrop``, inference crops and never resizes. Runs
    on the device with the rest of the model, on every backend.

    Args:
        height, width: the output size.
        random: random windows in training.
        seed: seed of the windows.
        **kwargs: base ``keras.layers.Layer`` arguments.
    """

    def __init__(self, height, width, random=False, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.random = bool(random)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        in_height, in_width = images.shape[1], images.shape[2]
        if not (training and self.random):
            top = (in_height - self.height) // 2
            left = (in_width - self.width) // 2
            return images[
                :, top : top + self.height, left : left + self.width, :
            ]
        batch = ops.shape(images)[0]
        rows = self._windows(batch, in_height, self.height)
        columns = self._windows(batch, in_width, self.width)
        images = ops.take_along_axis(images, rows[:, :, None, None], axis=1)
        return ops.take_along_axis(images, columns[:, None, :, None], axis=2)

    def _windows(self, batch, size, window):
        """``(B, window)`` indices of one random window per image."""
        start = keras.random.randint(
            (batch, 1), 0, size - window + 1, seed=self.seed_generator
        )
        return start + ops.arange(window, dtype="int32")[None, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(
            height=self.height,
            width=self.width,
            random=self.random,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dhsps")
class FlipImages(keras.layers.Layer):
    """Flips half of ``(B, H, W, C)`` images left-right, in training only.

    ``keras.layers.RandomFlip`` flips whenever it is called without
    ``training=False`` (its default is ``training=True``), so a hasher
    called as ``model(images)`` would flip at inference; this layer flips
    only when training is on. Each image is flipped with probability 1/2,
    drawn from a checkpointed ``SeedGenerator``.

    Args:
        seed: seed of the draws.
        **kwargs: base ``keras.layers.Layer`` arguments.
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        draws = keras.random.uniform(
            (ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator
        )
        return ops.where(draws < 0.5, ops.flip(images, axis=2), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config
