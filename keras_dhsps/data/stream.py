"""The training stream: an endless, seeded sequence of training batches.

One pass over the split per epoch, the last partial batch dropped (when
there is a full one), so a resumed run at step ``s`` skips exactly the
batches already used. The reader (:mod:`keras_dhsps.data.readers`) gives
the batches.
"""

from __future__ import annotations

import dataclasses

from keras_dhsps.config import InputConfig
from keras_dhsps.data.base import Split
from keras_dhsps.data.readers import choose_reader
from keras_dhsps.data.readers import open_reader


@dataclasses.dataclass(frozen=True)
class TrainingStream:
    """The endless seeded stream of training batches of one split.

    Attributes:
        split: the training images.
        reader: ``"tf.data"`` or ``"numpy"``
            (:data:`keras_dhsps.data.readers.READERS`).
        batch_size, image_size, seed: as in the config.
        input_config: how images reach the model (resize mode, store).
    """

    split: Split
    reader: str
    batch_size: int
    image_size: tuple
    seed: int
    input_config: InputConfig = InputConfig()

    def __post_init__(self):
        choose_reader(self.reader)

    def _options(self) -> dict:
        return dict(
            batch_size=self.batch_size,
            image_size=self.image_size,
            seed=self.seed,
            input_config=self.input_config,
        )

    def batches(self, start: int = 0):
        """Batches from global step ``start``: a ``tf.data.Dataset`` or a
        generator of NumPy batches, both read from the split's image store
        (``input.store="memory"``: decoded once per process) or decoded on
        the fly (``"none"``)."""
        reader = open_reader(self.reader)
        return reader.training_batches(
            self.split, start=start, **self._options()
        )

    def labels(self, step: int):
        """The labels of the batch of global step ``step``."""
        reader = open_reader(self.reader)
        return reader.training_labels(self.split, step=step, **self._options())
