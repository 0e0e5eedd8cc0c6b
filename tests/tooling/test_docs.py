"""README, .ci/run and .env.example stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from retail_forecast.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def _commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    first, second = _bash_blocks(readme)[:2]
    assert _commands(first) == [_commands(first)[0]]
    assert "retail-forecast run" in _commands(first)[0]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert _commands(second)[0] in ci.splitlines()


def _setting_names(model: type[BaseModel], prefix: str = "RF_") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_env_example_names_only_real_settings() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    named = set(re.findall(r"^# (RF_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named, "no RF_ settings found in .env.example"
    assert named <= _setting_names(Settings), sorted(named - _setting_names(Settings))


def test_settings_named_in_docs_exist() -> None:
    docs = REPO_ROOT / "docs"
    setting = re.compile(r"\bRF_[A-Z0-9_]*[A-Z0-9]\b")
    named = {name for doc in docs.glob("*.md") for name in setting.findall(doc.read_text())}
    assert named, "no RF_ settings found in docs/"
    assert sorted(named - _setting_names(Settings)) == []
