"""Shared fixtures. Tiers: unit tests by default; ``integration`` starts real Ray + MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"  # real-data cuts, in the repository (see its README)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from trainables.demo_data import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The built-in tiny model, built and saved once, loaded via from_pretrained(path)."""
    from trainables.models import resolve_model

    return resolve_model("builtin:tiny-bert", str(tmp_path_factory.mktemp("assets")))


@pytest.fixture(scope="session")
def mirror_dir(tmp_path_factory) -> Path:
    """A local mirror in the raw benchmark formats (real fixtures + synthetic files)."""
    from mirror import build_mirror

    return build_mirror(tmp_path_factory.mktemp("mirror"))
