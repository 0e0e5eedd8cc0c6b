"""CI installs Debian's chromium before the README's test command when it is missing."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ci_installs_chromium_when_missing_before_running_the_tests() -> None:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    guard = next(k for k, line in enumerate(lines) if "[ ! -x /usr/bin/chromium ]" in line)
    install = next(k for k, line in enumerate(lines) if "apt-get install -y -q chromium" in line)
    tests = next(k for k, line in enumerate(lines) if "-m pytest" in line)
    assert guard < install < tests
    # the browser tests skip without it, so a failed install must not fail the run (set -e)
    assert "||" in lines[install] or "||" in lines[install + 1]


def test_the_browser_tests_skip_with_the_install_command_without_chromium() -> None:
    source = (Path(__file__).parent / "test_browser.py").read_text()
    assert 'Path("/usr/bin/chromium")' in source
    assert "apt-get install chromium" in source
    assert "executable_path=str(CHROMIUM)" in source  # never a downloaded browser
