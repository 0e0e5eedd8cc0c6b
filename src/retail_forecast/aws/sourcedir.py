"""sourcedir.tar.gz for SageMaker: the package, requirements.txt and thin entry-point shims.

SageMaker's framework containers unpack it into ``/opt/ml/code`` (training) or the model's
code directory (hosting) and put that directory on ``sys.path``. The shims at the top level run
``retail_forecast.training.train_xgboost`` / ``train_lstm`` as ``__main__`` (script mode) and
re-export the four ``retail_forecast.inference.handler`` functions (hosting).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Final

import retail_forecast
from retail_forecast.aws.archive import write_tar_gz
from retail_forecast.errors import ConfigError

logger = logging.getLogger(__name__)

SOURCEDIR: Final = "sourcedir.tar.gz"
PACKAGE: Final = "retail_forecast"
PACKAGE_SUFFIXES: Final = frozenset({".py", ".typed"})
TRAIN_XGBOOST_PROGRAM: Final = "train_xgboost.py"
TRAIN_LSTM_PROGRAM: Final = "train_lstm.py"
HANDLER_PROGRAM: Final = "handler.py"

_RUN_MODULE: Final = '''"""SageMaker script-mode entry point: runs {module} as __main__."""

import runpy

runpy.run_module("{module}", run_name="__main__", alter_sys=True)
'''
SHIMS: Final = {
    TRAIN_XGBOOST_PROGRAM: _RUN_MODULE.format(module="retail_forecast.training.train_xgboost"),
    TRAIN_LSTM_PROGRAM: _RUN_MODULE.format(module="retail_forecast.training.train_lstm"),
    HANDLER_PROGRAM: (
        '"""SageMaker hosting entry point: model_fn / input_fn / predict_fn / output_fn."""\n\n'
        "from retail_forecast.inference.handler import (  # noqa: F401\n"
        "    input_fn,\n    model_fn,\n    output_fn,\n    predict_fn,\n)\n"
    ),
}


def package_dir() -> Path:
    """Directory of the installed ``retail_forecast`` package (``src/retail_forecast``)."""
    return Path(retail_forecast.__file__).resolve().parent


def default_requirements() -> Path:
    """``requirements.txt`` at the repository root of a src-layout checkout."""
    return package_dir().parents[1] / "requirements.txt"


def _package_files(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for name in filenames:
            path = Path(dirpath) / name
            if path.suffix in PACKAGE_SUFFIXES and not path.is_symlink():
                files[f"{PACKAGE}/{path.relative_to(root).as_posix()}"] = path
    return files


def pack_source_dir(
    dest: Path, *, package: Path | None = None, requirements: Path | None = None
) -> Path:
    """Write ``sourcedir.tar.gz`` (deterministic: same sources, same bytes) to ``dest``."""
    package = package or package_dir()
    requirements = requirements or default_requirements()
    if not requirements.is_file():
        raise ConfigError(f"{requirements} not found: the source dir needs requirements.txt")
    members = _package_files(package)
    members["requirements.txt"] = requirements
    with tempfile.TemporaryDirectory(prefix="rf-sourcedir-") as tmp:
        for name, text in SHIMS.items():
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            members[name] = path
        write_tar_gz(members, dest)
    logger.info("source dir packed path=%s files=%d", dest, len(members))
    return Path(dest)
