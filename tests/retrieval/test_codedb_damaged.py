"""A code database damaged where HDF5 loops forever or crashes ends in one
DHSPSError line, in bounded time (docs/reliability.md §13).

The damaged files are made here from a database the library writes. Its
attribute strings and paths live in a global heap collection: ``GCOL``, at
least 4 KiB (HDF5's smallest), a 16-byte header, then objects, each a
16-byte header (index: 2 bytes, references: 2, reserved: 4, size: 8) and
its bytes padded to 8; what the few short strings leave is free space,
filled with zeros. HDF5 (1.14.6, under h5py 3.14) decodes a collection by
moving from each object to ``begin + 16 + size``; a header of 16 zero bytes
(object 0, size 0) moves it by nothing, forever. So one changed size that
sends it into the free space hangs any read of an attribute. A changed
byte in the ``format`` attribute's datatype (the string kind of a
variable-length type) makes it crash with SIGSEGV.

Each read runs in a separate interpreter with a 30 s timeout, so that the
code before the fix (which hangs) fails the test instead of hanging it.
"""

import time

from tests.child import run_python
from tests.retrieval.damaged_codedb import write_crashing_datatype
from tests.retrieval.damaged_codedb import write_heap_loop

#: The per-step limit the hanging reads run with (READ_LIMIT_S is 30 s;
#: the crashing ones keep it, so a slow start on a loaded machine is never
#: taken for a hang).
LIMIT_S = 3.0
READ = """
import sys
from keras_dhsps.retrieval import codedb
from keras_dhsps.utils.errors import DHSPSError
codedb.READ_LIMIT_S = float(sys.argv[2])
for read in (
    lambda: codedb.read_code_database(sys.argv[1], relaxed=True),
    lambda: list(codedb.iter_packed_chunks(sys.argv[1])),
):
    try:
        read()
        print("read")
    except DHSPSError as error:
        print("DHSPSError:", error)
"""


def _read_outside(path, limit_s=30.0) -> tuple[list[str], float]:
    """The outcome of both public reads, each line; and the seconds taken."""
    start = time.monotonic()
    done = run_python(READ, path, limit_s, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), time.monotonic() - start


def _expect_one_line_each(lines, path, reason):
    line = f"DHSPSError: {path}: not a readable code database ({reason})"
    assert lines == [line, line]


def test_a_global_heap_object_sent_into_free_space_is_one_line(tmp_path):
    path = tmp_path / "codes.h5"
    write_heap_loop(path)
    lines, seconds = _read_outside(path, LIMIT_S)
    _expect_one_line_each(lines, path, "reading it did not finish in 3 s")
    assert seconds < 2 * LIMIT_S + 12  # two reads; starting interpreters


def test_a_datatype_that_crashes_hdf5_is_one_line(tmp_path):
    path = tmp_path / "codes.h5"
    write_crashing_datatype(path)
    lines, _ = _read_outside(path)
    _expect_one_line_each(
        lines, path, "the HDF5 library crashed reading it: SIGSEGV"
    )
