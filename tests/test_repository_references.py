"""The repository stands alone and its citations of docs/ resolve.

Every tracked text file (``git ls-files``: ``.py``, ``.md``, ``.toml``,
``.yml``, ``Makefile``, ``Dockerfile``) is scanned. It must not point to the
notes that lived outside the repository, and every ``docs/NAME.md §X`` it
cites (or ``NAME.md §X`` inside ``docs/``) must name an existing page with a
heading numbered ``X`` (``## 2. Method``, ``### 2.4 Hash layer ...``,
``### 1a. ...``). Failures list ``file:line``.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

SUFFIXES = (".py", ".md", ".toml", ".yml")
NAMES = ("Makefile", "Dockerfile")

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = (
    "../" + "shared",
    "shared/" + "peer_",
    "IDHN_" + "NOTES",
    "PEERS" + ".md",
    "DESIGN" + ".md",
    "STYLE" + ".md",
)

#: A section number: ``2``, ``2.4``, ``1a``.
SECTION = r"[0-9]+[a-z]?(?:\.[0-9]+)*"
#: ``docs/method.md §2.4``, ``docs/peers.md`` §5, ``docs/design.md §1, §7``.
#: A range continues with a bare number (``§2.5-2.8``), a list with ``§``.
CITATION = re.compile(
    r"(?:(?P<prefix>docs/)|(?<![\w/.-]))(?P<page>[a-z_]+)\.md`?\s*§\s*"
    rf"(?P<sections>{SECTION}"
    rf"(?:\s*[-–]\s*§?\s*{SECTION}|\s*(?:,|and)\s*§\s*{SECTION})*)"
)
HEADING = re.compile(rf"^#{{1,6}}\s+({SECTION})[.\s]")


def tracked_files() -> list[pathlib.Path]:
    """The text files git tracks (those that exist in the working tree)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode("utf-8")
    paths = [ROOT / name for name in listing.split("\0") if name]
    return [
        path
        for path in paths
        if path.is_file() and (path.suffix in SUFFIXES or path.name in NAMES)
    ]


def numbered_sections(page: pathlib.Path) -> set[str]:
    """The section numbers of a page's headings (outside code fences)."""
    sections = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            sections.add(match.group(1))
    return sections


def cited_sections(match: re.Match) -> list[str]:
    """``§2.2-2.8`` -> 2.2 and 2.8; ``§6, §8`` -> 6 and 8."""
    return re.findall(SECTION, match.group("sections"))


def dangling_citations(path: pathlib.Path, text: str) -> list[str]:
    """``file:line: reason`` for each citation that does not resolve."""
    in_docs = path.parent == ROOT / "docs"
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in CITATION.finditer(line):
            if not (match.group("prefix") or in_docs):
                continue
            page = ROOT / "docs" / f"{match.group('page')}.md"
            where = f"{path.relative_to(ROOT)}:{number}"
            if not page.is_file():
                problems.append(f"{where}: no page docs/{page.name}")
                continue
            known = numbered_sections(page)
            for section in cited_sections(match):
                if section not in known:
                    problems.append(
                        f"{where}: docs/{page.name} has no section §{section}"
                    )
    return problems


def outside_references(path: pathlib.Path, text: str) -> list[str]:
    """``file:line: 'pattern'`` for each reference outside the repo."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern in FORBIDDEN:
            if pattern in line:
                where = f"{path.relative_to(ROOT)}:{number}"
                problems.append(f"{where}: {pattern!r}")
    return problems


def test_no_reference_outside_the_repository():
    problems = []
    for path in tracked_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += outside_references(path, text)
    assert not problems, "references outside the repository:\n" + "\n".join(
        problems
    )


def test_every_docs_citation_names_an_existing_section():
    problems = []
    for path in tracked_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += dangling_citations(path, text)
    assert not problems, "dangling docs/ citations:\n" + "\n".join(problems)


def test_the_scan_sees_the_docs_and_this_file():
    names = {str(path.relative_to(ROOT)) for path in tracked_files()}
    assert "docs/method.md" in names
    assert "tests/test_repository_references.py" in names


# The bad citations are built at run time so that this file's own scan
# does not report them.
D = "docs/"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"see {D}method.md §2.4.", []),
        (f"(`{D}peers.md` §5, pitfall 3)", []),
        (f"{D}method.md §2.2-2.8", []),
        (f"{D}method.md §6, §8", []),
        (f"{D}method.md §3, 100 epochs", []),
        (f"{D}peers.md §1a", []),
        (f"{D}method.md §2.11", ["docs/method.md has no section §2.11"]),
        (f"{D}method.md §6, §10", ["docs/method.md has no section §10"]),
        (f"{D}method.md §2.5-2.12", ["docs/method.md has no section §2.12"]),
        (f"{D}nowhere.md §1", ["no page docs/nowhere.md"]),
        ("method.md §11 outside docs/ is not a citation", []),
        ("benchmarks/README.md §1 is not ours", []),
    ],
)
def test_citation_checker(line, expected):
    found = dangling_citations(ROOT / "keras_dhsps" / "x.py", line)
    assert [problem.split(": ", 1)[1] for problem in found] == expected
    assert all(problem.startswith("keras_dhsps/x.py:1: ") for problem in found)


def test_outside_reference_checker():
    line = "read " + "../" + "shared/" + "PEERS" + ".md §5"
    found = outside_references(ROOT / "README.md", line)
    assert found == [
        "README.md:1: " + repr("../" + "shared"),
        "README.md:1: " + repr("PEERS" + ".md"),
    ]
