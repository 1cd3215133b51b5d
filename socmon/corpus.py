"""The one place that locates the shared test corpus and the compliance catalogue (never copied
into the repository).

`SOCMON_CORPUS` overrides; the default is `../shared/corpus` beside the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path | None:
    """The corpus directory, or None when it is absent."""
    env = os.environ.get("SOCMON_CORPUS")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "corpus"
    return path if path.is_dir() else None


def corpus_path(*parts: str) -> Path:
    """A path inside the corpus; raises FileNotFoundError with a clear message when absent."""
    base = corpus_dir()
    if base is None:
        raise FileNotFoundError(
            "test corpus not found: set SOCMON_CORPUS or place shared/corpus beside the repository"
        )
    path = base.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"corpus path missing: {path}")
    return path


def shared_dir() -> Path | None:
    """The `shared` directory beside the repository (docs, the compliance catalogue), if there."""
    path = REPO_ROOT.parent / "shared"
    return path if path.is_dir() else None


def default_compliance_catalogue() -> Path | None:
    """`shared/data/compliance/controls.yaml` beside the repository, if there: the default of
    the `compliance_catalogue` setting (a deployment without it sets the path)."""
    base = shared_dir()
    path = base / "data" / "compliance" / "controls.yaml" if base is not None else None
    return path if path is not None and path.is_file() else None
