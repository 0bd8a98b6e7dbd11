"""What the Chromium tests share: the browser (Debian's `chromium`, never downloaded), its
flags, and a signed-in admin session to hand to a browser context as a cookie."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-component-update"]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (tests never download it)")
    return path


def session_for(user: Any) -> str:
    """A session id of `user`, signed in (call it before Playwright starts its event loop)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
