"""requirements.txt pins exactly the runtime dependencies of pyproject.toml, inside their ranges."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(spec) for spec in project["dependencies"])
    return {canonicalize_name(req.name): req for req in reqs}


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, pinned = line.partition("==")
        assert sep, f"requirements.txt line {raw!r} is not an exact pin"
        pins[canonicalize_name(name)] = pinned
    return pins


def test_requirements_pin_every_runtime_dependency_and_nothing_else() -> None:
    assert set(_pins()) == set(_pyproject_requirements())


def test_requirements_pins_satisfy_pyproject_ranges() -> None:
    reqs = _pyproject_requirements()
    for name, pinned in _pins().items():
        assert reqs[name].specifier.contains(pinned, prereleases=True), (name, pinned)


def test_torch_is_pinned_exactly_to_the_cpu_wheel_version() -> None:
    assert str(_pyproject_requirements()["torch"].specifier) == "==2.13.0"
    assert _pins()["torch"] == "2.13.0"
