"""The horizon is one setting: no module under src fixes it, bar the settings' own default.

``forecast.horizon`` (config.py) is the one default; a bundle records its horizon and serving
reads it there. The only other number is ``bundle_contents.LEGACY_HORIZON``: what a bundle
written before the setting existed forecast. Anything else that binds a horizon to a number
(a module constant, an argument's default, a ``horizon=16`` keyword, a field's default) or
imports a ``HORIZON`` constant is a data-set fact hidden in code, and fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "src" / "retail_forecast"
ALLOWED = {
    ("config.py", "ForecastConfig.horizon"),
    ("bundle_contents.py", "LEGACY_HORIZON"),
}


def _is_horizon(name: str) -> bool:
    """A name for the horizon's length (``horizon_day``, a column or day index, is not)."""
    lowered = name.lower()
    return "horizon" in lowered and "horizon_day" not in lowered


def _number(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.Call):  # Field(16, ...) / Field(default=16, ...)
        args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "default")]
        return any(_number(arg) for arg in args)
    return False


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module, self.scope, self.found = module, [""], list[tuple[str, str, int]]()

    def _flag(self, name: str, line: int) -> None:
        qualified = f"{self.scope[-1]}.{name}" if self.scope[-1] else name
        if (self.module, qualified) not in ALLOWED:
            self.found.append((self.module, qualified, line))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if _is_horizon(alias.name) and alias.name.isupper():  # a constant, not a function
                self._flag(f"import {alias.name}", node.lineno)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name) and _is_horizon(target.id) and _number(node.value):
                self._flag(target.id, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        target = node.target
        if isinstance(target, ast.Name) and _is_horizon(target.id) and _number(node.value):
            self._flag(target.id, node.lineno)
        self.generic_visit(node)

    def visit_arguments(self, node: ast.arguments) -> None:
        positional = [*node.posonlyargs, *node.args]
        pairs = list(
            zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True)
        )
        pairs += [
            (a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None
        ]
        for arg, default in pairs:
            named = isinstance(default, ast.Name) and _is_horizon(default.id)
            if _is_horizon(arg.arg) and (_number(default) or named):
                self._flag(f"argument {arg.arg}", arg.lineno)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None and _is_horizon(node.arg) and _number(node.value):
            self._flag(f"keyword {node.arg}=", node.value.lineno)
        self.generic_visit(node)


def horizon_constants(package: Path) -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    for path in sorted(package.rglob("*.py")):
        finder = _Finder(path.relative_to(package).as_posix())
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += finder.found
    return found


def test_p34_no_module_under_src_fixes_the_horizon_but_the_settings_default() -> None:
    assert horizon_constants(PACKAGE) == []


def test_the_one_default_is_forecast_horizon_16() -> None:
    from retail_forecast.config import ForecastConfig

    assert ForecastConfig().horizon == 16


def test_the_scan_catches_each_kind_of_horizon_constant(tmp_path: Path) -> None:
    """What the code held before the horizon was a setting is found (the scan can fail)."""
    (tmp_path / "schema.py").write_text("from typing import Final\nHORIZON: Final = 16\n")
    (tmp_path / "net.py").write_text(
        "from retail_forecast.schema import HORIZON\n"
        "def net(*, horizon: int = HORIZON) -> None: ...\n"
        "def backtest(folds: int = 4, horizon: int = 16) -> None: ...\n"
        "net(horizon=16)\n"
        "class Cfg:\n    horizon: int = Field(default=16, ge=1)\n"
    )
    (tmp_path / "fine.py").write_text(
        "HORIZON_DAY = 'horizon_day'\ndef f(*, horizon: int) -> None: ...\nf(horizon=n)\n"
    )
    found = {(module, name) for module, name, _ in horizon_constants(tmp_path)}
    assert found == {
        ("schema.py", "HORIZON"),
        ("net.py", "import HORIZON"),
        ("net.py", "argument horizon"),
        ("net.py", "keyword horizon="),
        ("net.py", "Cfg.horizon"),
    }
