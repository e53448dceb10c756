"""``keras_dhsps.cli.main`` is the one dispatch point: a command's module
is imported only when a command line names it, so ``dhsps --help`` and the
data commands import neither Keras nor TensorFlow."""

import pytest

from keras_dhsps.cli.main import COMMANDS
from keras_dhsps.cli.main import main
from tests.child import run_python

#: Commands with subcommands: their ``--help`` for each.
NESTED = {
    "plot": ("curves", "examples"),
    "data": ("prepare", "verify", "download"),
}


def loaded_after(argv):
    """Runs ``main(argv)`` in a fresh interpreter; returns its exit status
    and which command modules and heavy packages it imported."""
    code = (
        "import contextlib, io, sys\n"
        "from keras_dhsps.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main({argv!r})\n"
        "names = ['keras_dhsps.cli.' + n for n in "
        f"{sorted(COMMANDS)!r}] + ['tensorflow', 'keras', 'jax', 'torch']\n"
        "print(status, *[n for n in names if n in sys.modules])\n"
    )
    done = run_python(code, check=True)
    status, *loaded = done.stdout.split()
    return int(status), loaded


def test_help_imports_no_command():
    assert loaded_after(["--help"]) == (0, [])


def test_a_data_command_imports_its_module_only():
    status, loaded = loaded_after(["data", "verify", "--dataset", "voc2012"])
    assert (status, loaded) == (2, ["keras_dhsps.cli.data"])


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "{" + ",".join(COMMANDS) + "}" in out
    for name, help_text in COMMANDS.items():
        assert f"    {name:<10s}" in out and help_text in out


@pytest.mark.parametrize(
    "argv",
    [[name] for name in COMMANDS]
    + [[name, kind] for name, kinds in NESTED.items() for kind in kinds],
)
def test_every_command_has_its_help_and_verbose(argv, capsys):
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: dhsps {' '.join(argv)} [-h]")
    assert "--verbose {0,1,2}" in out


def test_a_parser_is_completed_once_and_parses_again():
    from keras_dhsps.cli.main import build_parser

    parser = build_parser()
    first = parser.parse_args(["search", "m", "c", "q", "-k", "3"])
    again = parser.parse_args(["--verbose", "0", "search", "m", "c", "q"])
    assert (first.k, first.verbose, again.k, again.verbose) == (3, None, 20, 0)
    assert first.handler is again.handler
