"""Downloads the official archives of datasets with stable addresses.

``keras.utils.get_file`` fetches each archive into ``DIR/archives`` and
checks its hash; the archive is then extracted into ``DIR`` (the dataset
root the readers expect) through a staging folder, so an interrupted or
failed download leaves neither a corrupt archive nor half an extraction.

Checksums: VOC2012's trainval tar has a published MD5 (the one
torchvision and many download scripts use). The MIRFlickr-25K archives on
press.liacs.nl have no checksum we could confirm, so the SHA-256 of each is
a required argument (``--hash mirflickr25k.zip=...``): compute it once from
a trusted copy. A hash given by the caller also overrides a published one,
for mirrors (``base_url``) that repackage the files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile

from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Archive:
    """One official archive.

    Attributes:
        file: the archive's file name.
        url: its official address.
        file_hash: published MD5 (32 hex digits) or SHA-256 (64), or None
            when none could be confirmed (the caller must give one).
    """

    file: str
    url: str
    file_hash: str | None


ARCHIVES = {
    "voc2012": (
        Archive(
            "VOCtrainval_11-May-2012.tar",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
            "VOCtrainval_11-May-2012.tar",
            "6cd6e144f989b92b3379bac3b3de84fd",
        ),
    ),
    "mirflickr25k": (
        Archive(
            "mirflickr25k.zip",
            "http://press.liacs.nl/mirflickr/mirflickr25k.v3b/mirflickr25k.zip",
            None,
        ),
        Archive(
            "mirflickr25k_annotations_v080.zip",
            "http://press.liacs.nl/mirflickr/mirflickr25k.v3b/"
            "mirflickr25k_annotations_v080.zip",
            None,
        ),
    ),
}


def _extract(archive_path: str, directory: str) -> list[str]:
    """Extracts into ``directory`` via a staging folder; top-level entries."""
    staging = tempfile.mkdtemp(dir=directory, prefix=".tmp-extract-")
    try:
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as archive:
                for member in archive.namelist():
                    target = os.path.realpath(os.path.join(staging, member))
                    if not target.startswith(os.path.realpath(staging)):
                        raise DataError(
                            f"{archive_path}: unsafe member path {member!r}"
                        )
                archive.extractall(staging)
        elif tarfile.is_tarfile(archive_path):
            with tarfile.open(archive_path) as archive:
                try:
                    archive.extractall(staging, filter="data")
                except tarfile.FilterError as error:
                    raise DataError(f"{archive_path}: {error}") from None
        else:
            raise DataError(f"{archive_path}: neither a zip nor a tar archive")
        entries = sorted(os.listdir(staging))
        for entry in entries:
            target = os.path.join(directory, entry)
            if os.path.exists(target):
                logger.info("%s already exists; kept", target)
                continue
            os.rename(os.path.join(staging, entry), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [os.path.join(directory, entry) for entry in entries]


def download(
    name: str,
    directory: str,
    *,
    file_hashes: dict[str, str] | None = None,
    base_url: str | None = None,
) -> list[str]:
    """Downloads, checks and extracts a dataset's archives.

    Args:
        name: a key of :data:`ARCHIVES`.
        directory: the dataset root to extract into (created if missing).
        file_hashes: archive file name -> expected MD5 or SHA-256; required
            for archives without a published checksum.
        base_url: fetch ``base_url/<file>`` instead of the official URL.

    Returns:
        The extracted top-level paths.

    Raises:
        UnknownNameError: no archives known for ``name``.
        DHSPSError: a missing checksum, or a failed download.
        DataError: a checksum mismatch (the archive is deleted).
    """
    if name not in ARCHIVES:
        raise UnknownNameError(
            f"no download for dataset {name!r}; downloadable: "
            f"{', '.join(sorted(ARCHIVES))}"
        )
    file_hashes = dict(file_hashes or {})
    archives = ARCHIVES[name]
    for archive in archives:
        if archive.file_hash is None and archive.file not in file_hashes:
            raise DHSPSError(
                f"{archive.file} has no published checksum: pass "
                f"--hash {archive.file}=<sha256 of a trusted copy>"
            )
    import keras  # imported late: it starts TensorFlow.

    directory = os.path.abspath(directory)
    cache = os.path.join(directory, "archives")
    os.makedirs(cache, exist_ok=True)
    extracted = []
    for archive in archives:
        expected = file_hashes.get(archive.file, archive.file_hash)
        origin = (
            f"{base_url.rstrip('/')}/{archive.file}"
            if base_url
            else archive.url
        )
        target = os.path.join(cache, archive.file)
        try:
            path = keras.utils.get_file(
                fname=archive.file,
                origin=origin,
                file_hash=expected,
                cache_dir=directory,
                cache_subdir="archives",
            )
        except ValueError as error:
            if os.path.exists(target):
                os.remove(target)  # keras leaves the corrupt file behind
            raise DataError(f"{origin}: {error}") from None
        except Exception as error:  # get_file re-raises fetch errors bare
            raise DHSPSError(f"download failed: {error}") from None
        extracted += _extract(path, directory)
    return extracted
