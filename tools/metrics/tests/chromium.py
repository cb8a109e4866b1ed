"""What the browser tests share: Debian's chromium under pytest-playwright (Playwright's
own browser download cannot be reached), the skip when it is absent (a failure under
CHIMERA_REQUIRE_OPTIONAL=1: tools/testing/optional.py), and the checks
every page gets (images load, no console error)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tools.host_tools.host_tool import recorded
from tools.testing import optional

_RECORD = recorded("chromium")
CHROMIUM = _RECORD.path
OUTPUTS = Path(os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", "."))
MISSING = _RECORD.missing


def requires_chromium():  # noqa: ANN201 (a pytest fixture)
    """A module's `_chromium = requires_chromium()`: each of its tests skips (or fails) without it."""
    return optional.every_test_requires(MISSING)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Session-scoped, so set up before any module's autouse fixture: no launch without chromium.
    optional.require(MISSING)
    # Debian's chromium instead of Playwright's own build; its sandbox needs user
    # namespaces the test sandbox does not give.
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}


def record_errors(page: Any) -> list[str]:
    """The console errors and uncaught exceptions `page` logs from now on."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def images(page: Any) -> list[dict[str, Any]]:
    """Every <img> of the page: src, and whether it decoded (complete, naturalWidth > 0)."""
    return page.eval_on_selector_all(
        "img", "els => els.map(e => ({src: e.getAttribute('src'), ok: e.complete && e.naturalWidth > 0}))")


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in the test's undeclared outputs."""
    path = OUTPUTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
