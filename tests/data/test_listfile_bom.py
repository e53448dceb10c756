"""List files that begin with a UTF-8 byte-order mark are read."""

import numpy as np

from keras_dhsps.data.listfile import read_list_file


def test_a_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "images" / name).write_bytes(b"\xff\xd8")
    text = "images/a.jpg 1 0\nimages/b.jpg 0 1\n"
    plain = tmp_path / "plain.txt"
    plain.write_text(text, encoding="utf-8")
    marked = tmp_path / "marked.txt"
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    root = str(tmp_path)
    paths, labels = read_list_file(str(marked), root=root)
    expected_paths, expected_labels = read_list_file(str(plain), root=root)
    assert paths == expected_paths
    assert paths[0] == str(tmp_path / "images" / "a.jpg")
    np.testing.assert_array_equal(labels, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(labels, expected_labels)
