"""Data tests skip on a clone without the real data, fail under CI, and must carry the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]

DATA_TESTS = """
import pytest


@pytest.mark.data
def test_reads_the_files(favorita_dir):
    assert (favorita_dir / "stores.csv").exists()


@pytest.mark.data
def test_marked_without_the_fixture():
    pass


def test_unmarked_but_reads_the_files(favorita_dir):
    pass


def test_needs_no_data():
    pass
"""


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, data_dir: Path, ci: str | None
) -> pytest.RunResult:
    """tests/conftest.py on DATA_TESTS, the real data expected at ``data_dir``."""
    pytester.makeconftest((TESTS_DIR / "conftest.py").read_text())
    pytester.makepyfile(test_uses_data=DATA_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    data: real data\n")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    # a process of its own: an in-process run snapshots and restores sys.modules, which races
    # with any thread of an earlier test that imports lazily ("dictionary keys changed")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", f"--data-path={data_dir}")


@pytest.mark.parametrize("ci", [None, "false"])
def test_data_tests_skip_with_a_clear_message_when_the_data_is_absent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    absent = pytester.path / "absent"
    result = _run(pytester, monkeypatch, absent, ci)
    # the unmarked reader is an error even here: the quick loop would not deselect it
    result.assert_outcomes(passed=1, skipped=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_unmarked_but_reads_the_files reads the real data: mark it @pytest.mark.data",
            f"SKIPPED *real Favorita data not found at {absent} *: data test skipped",
        ]
    )


def test_data_tests_fail_under_ci_when_the_data_is_absent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, pytester.path / "absent", "true")
    result.assert_outcomes(passed=1, errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "ERROR *::test_reads_the_files - *CI is set, so the data tests must run",
            "ERROR *::test_marked_without_the_fixture - *CI is set, so the data tests must run",
        ]
    )


def test_data_tests_run_when_the_data_is_there(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = pytester.mkdir("data")
    (data_dir / "stores.csv").write_text("store_nbr\n1\n")
    result = _run(pytester, monkeypatch, data_dir, "true")
    result.assert_outcomes(passed=3, errors=1)  # only the unmarked reader is refused
