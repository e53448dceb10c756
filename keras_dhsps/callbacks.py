"""Training callbacks."""

from __future__ import annotations

import keras

from keras_dhsps.data.base import Split


class RetrievalValidation(keras.callbacks.Callback):
    """Logs ``val_map`` (mAP@all) every ``every`` epochs on training data.

    Queries are the ``validation`` split (carved from training data) and the
    retrieval set is the ``train`` split, so model selection never sees the
    test queries or the database. The value is added to the epoch's logs,
    where ``History``, ``ModelCheckpoint(monitor="val_map", mode="max")`` and
    TensorBoard find it.

    Args:
        validation: the validation split (queries).
        train: the training split (retrieval set).
        every: evaluate every this many epochs (and after the last one).
        batch_size: encoding batch size.
    """

    def __init__(self, validation: Split, train: Split, every=1, batch_size=256):
        super().__init__()
        self.validation = validation
        self.train = train
        self.every = max(int(every), 1)
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        from keras_dhsps.evaluation import encode
        from keras_dhsps.metrics import mean_average_precision

        query_codes = encode(self.model, self.validation, batch_size=self.batch_size)
        train_codes = encode(self.model, self.train, batch_size=self.batch_size)
        value = mean_average_precision(
            query_codes, self.validation.labels, train_codes, self.train.labels
        )
        if logs is not None:
            logs["val_map"] = float(value)
