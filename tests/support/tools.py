"""Tests that need a tool: under ``CI=true`` a missing tool fails the test, elsewhere it skips."""

import os
import shutil

import pytest


def require(missing: str | None) -> None:
    """Fail (in CI) or skip (elsewhere) with ``missing`` unless it is None."""
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing}; CI must provide it")
    pytest.skip(f"{missing}; CI runs this test")


def missing_command(name: str) -> str | None:
    """None when ``name`` is on PATH, otherwise a reason saying it is not."""
    return None if shutil.which(name) else f"{name} is not installed"
