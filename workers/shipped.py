"""Where the files mailroom ships beside its code are: ``templates/`` and
``migrations/`` at the top of a checkout, or inside the package once installed
from a wheel (``pyproject.toml`` maps them to ``workers/_shipped/``)."""

from pathlib import Path

_PACKAGE = Path(__file__).parent


def shipped(name: str) -> Path:
    installed = _PACKAGE / "_shipped" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name
