"""Encoding a collection on Ray Data: images read and encoded by workers
that each load the hasher once, codes written as shards with a manifest.

:func:`encode_on_ray` lists the images in blocks, encodes them with
``map_batches`` over a callable class (:class:`_Encoder`, one hasher per
worker) in order, and streams the codes into HDF5 shards
(:mod:`keras_dhsps.retrieval.codedb`) listed by a shard manifest
(:mod:`keras_dhsps.retrieval.shards`: the one manifest format, which
``dhsps search`` and ``dhsps index build`` read). :func:`shard_rows` picks
one contiguous piece for ``--shard I/N``.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np

from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError

RAY_MISSING = "--engine ray needs Ray Data: pip install 'keras_dhsps[ray]'"


def shard_rows(count: int, shard: tuple[int, int]) -> range:
    """Rows of piece ``I`` of ``N`` (``shard = (I, N)``): the contiguous
    block ``[I*count//N, (I+1)*count//N)``, so the pieces in order are the
    collection in order."""
    index, total = shard
    return range(index * count // total, (index + 1) * count // total)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    Raises:
        DHSPSError: anything else.
    """
    index, _, total = text.partition("/")
    if not (index.isdigit() and total.isdigit()) or not (
        0 <= int(index) < int(total)
    ):
        raise DHSPSError(f"--shard expects I/N with 0 <= I < N, got {text!r}")
    return int(index), int(total)


# ------------------------------------------------------------ Ray workers
class _Encoder:
    """One Ray Data worker: loads the hasher once, encodes blocks of paths.

    Each output row has its ``position``, its relaxed ``codes`` and an
    ``error`` (empty when the image was read)."""

    def __init__(self, model: str, batch_size: int) -> None:
        from keras_dhsps.serving.load import load_hasher

        self.hasher = load_hasher(model)
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        from keras_dhsps.data.decoding import read_image_files

        paths = [str(p) for p in batch["path"]]
        codes = np.zeros((len(paths), self.hasher.bits), np.float32)
        errors = np.array([""] * len(paths), dtype=object)
        failures: list = []
        for positions, images in read_image_files(
            paths,
            resize=self.hasher.resize,
            size=self.hasher.stored_size,
            failures=failures,
            batch_size=self.batch_size,
        ):
            images = np.asarray(self.hasher.crop_stored(images), np.float32)
            codes[positions] = self.hasher.codes_from_preprocessed(images)
        for position, reason in failures:
            errors[position] = reason or "cannot read image"
        return {"position": batch["position"], "codes": codes, "error": errors}


# ----------------------------------------------------------------- driver
@dataclasses.dataclass
class RayOptions:
    """Where and how widely to run: ``address`` of a Ray cluster (None:
    start Ray here with ``num_workers`` CPUs), workers, images per block
    and per forward pass, rows per shard, seconds to wait for a cluster."""

    address: str | None = None
    num_workers: int = 1
    batch_size: int = 64
    rows_per_shard: int = 100_000
    timeout_s: float = 30.0


def _start_ray(options: RayOptions):
    try:
        import ray
    except ImportError:
        raise DHSPSError(RAY_MISSING) from None
    quiet = dict(
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    if options.address is None:
        ray.init(num_cpus=options.num_workers, **quiet)
        return ray
    from keras_dhsps.training.multihost import wait_for_address

    wait_for_address(options.address, options.timeout_s, what="Ray cluster")
    try:
        ray.init(address=options.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise DHSPSError(
            f"cannot join the Ray cluster at {options.address}: {error}"
        ) from None
    return ray


def _encoded_rows(ray, model: str, paths, options: RayOptions) -> Iterator:
    """``(positions, codes, errors)`` batches from the workers, in order."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    rows = [{"position": i, "path": p} for i, p in enumerate(paths)]
    blocks = max(1, min(len(rows), 4 * options.num_workers))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    encoded = dataset.map_batches(
        _Encoder,
        fn_constructor_kwargs={
            "model": model,
            "batch_size": options.batch_size,
        },
        batch_size=options.batch_size,
        compute=ray.data.ActorPoolStrategy(size=options.num_workers),
        num_cpus=1,
        batch_format="numpy",
    )
    for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
        yield batch["position"], batch["codes"], batch["error"]


def _checked(batches, paths, skip_bad_images, skipped) -> Iterator:
    """The readable rows of each batch; an unreadable image raises unless
    ``skip_bad_images`` (then its position goes to ``skipped``)."""
    for positions, codes, errors in batches:
        bad = np.asarray([bool(e) for e in errors], bool)
        for position, error in zip(positions[bad], errors[bad], strict=True):
            if not skip_bad_images:
                raise DataError(
                    f"{paths[position]}: cannot read image ({error}); pass "
                    "--skip-bad-images to skip it"
                )
            skipped.append(int(position))
        if (~bad).any():
            yield positions[~bad], codes[~bad]


def _shards(batches, rows_per_shard) -> Iterator[Iterator]:
    """``batches`` cut into groups of about ``rows_per_shard`` rows (a
    shard ends after the batch that reaches it)."""
    batches = iter(batches)
    for first in batches:

        def group(first=first):
            count = len(first[0])
            yield first
            while count < rows_per_shard:
                item = next(batches, None)
                if item is None:
                    return
                count += len(item[0])
                yield item

        yield group()


def shard_path(manifest: str, number: int) -> str:
    """Shard ``number`` of ``codes.json``: ``codes-00000.h5`` beside it."""
    return f"{manifest[: -len('.json')]}-{number:05d}.h5"


def outputs_of_encode(output: str) -> list[tuple[str, str]]:
    """``(path, kind)`` of what ``dhsps encode -o OUTPUT`` may replace: the
    code database, or a manifest and the shards already beside it."""
    if not output.endswith(".json"):
        return [(output, "code database")]
    shards = glob.glob(f"{glob.escape(output[: -len('.json')])}-[0-9]*.h5")
    return [(output, "shard manifest")] + [
        (path, "code database") for path in sorted(shards)
    ]


def encode_on_ray(
    model: str,
    paths: Sequence[str],
    output: str,
    *,
    labels: np.ndarray | None = None,
    options: RayOptions | None = None,
    skip_bad_images: bool = False,
    store_relaxed: bool = False,
    extra_metadata: dict | None = None,
) -> dict:
    """Encodes image files on Ray Data into shards and a manifest.

    Args:
        model: what ``load_hasher`` opens (every worker opens it: a path
            all of them can read).
        paths, labels: the images in database order, and their labels.
        output: the manifest, ``*.json``; shards go beside it
            (:func:`shard_path`).
        options: :class:`RayOptions`.

    Returns:
        ``{"encoded": n, "skipped": m, "skipped_paths": [...],
        "shards": s, "bits": K}``.

    Raises:
        DHSPSError: no Ray, an unreachable cluster, an output not named
            ``*.json``; DataError: an unreadable image (without
            ``skip_bad_images``). Nothing is left behind then.
    """
    from keras_dhsps.serving.load import load_hasher

    options = options or RayOptions()
    if not output.endswith(".json"):
        raise DHSPSError(
            f"--engine ray writes a manifest: name it *.json ({output})"
        )
    hasher = load_hasher(model)
    metadata = dict(hasher.metadata, model_path=os.path.abspath(model))
    metadata.update(extra_metadata or {})
    ray = _start_ray(options)
    skipped: list[int] = []
    files: list[str] = []
    try:
        rows = _checked(
            _encoded_rows(ray, model, paths, options),
            paths,
            skip_bad_images,
            skipped,
        )
        groups = _shards(rows, options.rows_per_shard)
        for number, group in enumerate(_or_one_empty(groups)):
            files.append(shard_path(output, number))
            start = len(skipped)
            write_code_database(
                files[-1],
                (
                    CodeBatch(
                        codes,
                        [paths[p] for p in positions],
                        None if labels is None else labels[positions],
                    )
                    for positions, codes in group
                ),
                bits=hasher.bits,
                metadata=metadata,
                num_classes=None if labels is None else int(labels.shape[1]),
                store_relaxed=store_relaxed,
                skipped_paths=lambda start=start: [
                    paths[p] for p in skipped[start:]
                ],
            )
        shards = write_shard_manifest(output, files)
    except BaseException:
        for name in files:
            if os.path.exists(name):
                os.remove(name)
        raise
    finally:
        ray.shutdown()
    return {
        "encoded": sum(shard.rows for shard in shards),
        "skipped": len(skipped),
        "skipped_paths": [paths[p] for p in skipped],
        "shards": len(files),
        "bits": hasher.bits,
    }


def _or_one_empty(groups) -> Iterator:
    """``groups``, or one empty group when there is none (every image
    skipped): a manifest lists at least one shard."""
    empty = True
    for group in groups:
        empty = False
        yield group
    if empty:
        yield iter(())
