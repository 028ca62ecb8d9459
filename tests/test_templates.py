"""Rules every template keeps, checked on the sources."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_every_scroll_box_is_reachable_by_keyboard_and_named() -> None:
    """A table that scrolls in its own box must be scrollable without a mouse and say what
    it holds to a screen reader."""
    missing = []
    for path in TEMPLATES.rglob("*.html"):
        for tag in re.findall(r"<div[^>]*class=\"scroll-x\"[^>]*>", path.read_text()):
            if 'tabindex="0"' not in tag or 'role="region"' not in tag or "aria-label=" not in tag:
                missing.append(f"{path.relative_to(TEMPLATES)}: {tag}")
    assert not missing, missing
