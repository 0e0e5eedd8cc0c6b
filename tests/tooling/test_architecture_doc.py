"""The map inside the repository stays true: docs/ lists every module, cites resolve in docs/."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
PACKAGE = SRC / "retail_forecast"
DOCS = REPO_ROOT / "docs"
ARCHITECTURE = DOCS / "ARCHITECTURE.md"
RELIABILITY = DOCS / "RELIABILITY.md"
DESIGN = DOCS / "DESIGN.md"

# A module is listed as "- `retail_forecast/<path>.py`: ..." at the start of a line.
LISTED_MODULE = re.compile(r"^- `(retail_forecast/[\w/]+\.py)`", re.MULTILINE)
NAMED_PACKAGE = re.compile(r"`(retail_forecast/[\w/]+/)`")
# Backticked file paths in the docs: checked against the tree.
DOC_PATH = re.compile(r"`([\w./-]+\.(?:py|md)|(?:tests|bench)/[\w/]+/)`")
ROOT_PREFIXES = ("tests/", "bench/", "docs/", "scripts/", "src/", "notebooks/")

PROMISE_HEADING = re.compile(r"^### (\d+)\. ", re.MULTILINE)
DESIGN_HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)
NUMBER_LIST = r"\d+(?:\s*(?:,|and|or|-|–|/)\s*\d+)*"
PROMISE_CITATION = re.compile(rf"\bpromises?[\s-]+({NUMBER_LIST})", re.IGNORECASE)
PROMISE_TEST = re.compile(r"\btest_p(\d{2})_")
DESIGN_SECTION = re.compile(r"docs/DESIGN\.md,? sections? (\d+)")

# What a citation outside docs/ may not look like: the team's brief beside the repository, or a
# doc named without the folder that holds it (this file spells them, so it is not scanned).
FORBIDDEN_CITATIONS = {
    "the brief outside the repository": re.compile(r"shared/docs"),
    "STYLE.md (not in the repository)": re.compile(r"\bSTYLE\.md"),
    "DESIGN.md without docs/": re.compile(r"(?<!docs/)\bDESIGN\.md"),
    "RELIABILITY.md without docs/": re.compile(r"(?<!docs/)\bRELIABILITY\.md"),
    "bare RELIABILITY (cite 'promise N')": re.compile(r"\bRELIABILITY\b(?!\.md)"),
}


def _modules() -> set[str]:
    return {
        path.relative_to(SRC).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }


def _packages() -> set[str]:
    return {
        path.parent.relative_to(SRC).as_posix() + "/"
        for path in PACKAGE.rglob("__init__.py")
        if path.parent != PACKAGE and "__pycache__" not in path.parts
    }


def _cited_files() -> Iterator[Path]:
    """Source, tests, benchmarks and the README: every file that cites docs/."""
    yield REPO_ROOT / "README.md"
    for folder, suffixes in ((PACKAGE, (".py",)), (REPO_ROOT / "tests", (".py",))):
        yield from (p for p in sorted(folder.rglob("*")) if p.suffix in suffixes)
    bench = REPO_ROOT / "bench"
    yield from (p for p in sorted(bench.rglob("*")) if p.suffix in (".py", ".md"))


def _numbers(text: str) -> set[int]:
    """``"1-3, 7 and 9"`` -> {1, 2, 3, 7, 9}."""
    found: set[int] = set()
    for part in re.split(r"\s*(?:,|and|or|/)\s*", text):
        ends = [int(n) for n in re.split(r"\s*[-–]\s*", part) if n.isdigit()]
        if ends:
            found |= set(range(min(ends), max(ends) + 1))
    return found


def _resolve(token: str) -> Path:
    if token.startswith(ROOT_PREFIXES) or ("/" not in token and token.endswith(".md")):
        return REPO_ROOT / token
    if token.startswith("retail_forecast/"):
        return SRC / token
    return PACKAGE / token


def test_every_module_under_src_is_listed_once_and_every_listed_module_exists() -> None:
    listed = LISTED_MODULE.findall(ARCHITECTURE.read_text(encoding="utf-8"))
    modules = _modules()
    assert sorted(modules - set(listed)) == [], "modules missing from docs/ARCHITECTURE.md"
    assert sorted(set(listed) - modules) == [], "docs/ARCHITECTURE.md lists modules that are gone"
    assert [name for name, n in Counter(listed).items() if n > 1] == []


def test_every_package_is_named_and_every_named_package_exists() -> None:
    named = set(NAMED_PACKAGE.findall(ARCHITECTURE.read_text(encoding="utf-8")))
    assert sorted(_packages() - named) == [], "packages missing from docs/ARCHITECTURE.md"
    assert sorted(named - _packages()) == [], "docs/ARCHITECTURE.md names packages that are gone"


def test_paths_named_in_docs_exist() -> None:
    missing = [
        f"{doc.name}: {token}"
        for doc in sorted(DOCS.glob("*.md"))
        for token in DOC_PATH.findall(doc.read_text(encoding="utf-8"))
        if not _resolve(token).exists()
    ]
    assert missing == []


def test_every_cited_promise_is_defined_in_docs_reliability() -> None:
    defined = {int(n) for n in PROMISE_HEADING.findall(RELIABILITY.read_text(encoding="utf-8"))}
    assert defined >= set(range(1, 30))
    undefined = []
    for path in _cited_files():
        text = path.read_text(encoding="utf-8")
        cited = {n for match in PROMISE_CITATION.findall(text) for n in _numbers(match)}
        cited |= {int(n) for n in PROMISE_TEST.findall(text)}
        undefined += [f"{path.relative_to(REPO_ROOT)}: promise {n}" for n in cited - defined]
    assert undefined == []


def test_design_sections_cited_exist() -> None:
    sections = {int(n) for n in DESIGN_HEADING.findall(DESIGN.read_text(encoding="utf-8"))}
    undefined = [
        f"{path.relative_to(REPO_ROOT)}: section {n}"
        for path in _cited_files()
        for n in {int(m) for m in DESIGN_SECTION.findall(path.read_text(encoding="utf-8"))}
        if n not in sections
    ]
    assert undefined == []


def test_no_citation_points_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    bad = [
        f"{path.relative_to(REPO_ROOT)}:{lineno}: {what}"
        for path in _cited_files()
        if path.resolve() != this_file
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for what, pattern in FORBIDDEN_CITATIONS.items()
        if pattern.search(line)
    ]
    assert bad == []


def test_the_citation_checks_can_fail() -> None:
    assert _numbers("1-3, 7 and 9") == {1, 2, 3, 7, 9}
    assert PROMISE_CITATION.findall("as promises 4, 18 and 19 say") == ["4, 18 and 19"]
    assert FORBIDDEN_CITATIONS["bare RELIABILITY (cite 'promise N')"].search("(RELIABILITY 26)")
    assert not FORBIDDEN_CITATIONS["DESIGN.md without docs/"].search("docs/DESIGN.md, section 2")
    assert LISTED_MODULE.findall("- `retail_forecast/x.py`: y\n  `retail_forecast/z.py`") == [
        "retail_forecast/x.py"
    ]
