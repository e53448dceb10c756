"""A user-facing error is one line, whatever value it quotes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_dhsps.config import from_dict
from keras_dhsps.utils.errors import ConfigError
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError


def test_line_breaks_and_escapes_are_shown_escaped():
    error = DataError("bad file 'a\nb\tc\x1b[31m' (é, ✓)")
    assert str(error) == "bad file 'a\\nb\\tc\\x1b[31m' (é, ✓)"


def test_unknown_name_is_not_quoted_like_a_key_error():
    assert str(UnknownNameError("unknown dataset 'mnist'")) == (
        "unknown dataset 'mnist'"
    )
    assert str(DHSPSError()) == ""


@given(st.text())
def test_every_message_is_one_printable_line(text):
    for error in (ConfigError(text), UnknownNameError(text)):
        assert str(error).isprintable()


def test_a_config_key_with_a_line_break_names_it_on_one_line():
    # Found by the slow file fuzz: the key was written into the message.
    with pytest.raises(ConfigError) as caught:
        from_dict({"\n": None})
    assert str(caught.value).startswith("unknown config key(s) \\n; known in")
