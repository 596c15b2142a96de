"""The README as a newcomer meets it: short, every picture made by a command in the repository and
present, every page of docs/ linked."""

from __future__ import annotations

import re

from dev import readme_images
from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short_and_links_every_docs_page():
    assert len(README.splitlines()) < 100
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)\)", README))
    pages = {f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md")}
    assert pages and pages <= linked, sorted(pages - linked)


def test_every_picture_exists_and_is_made_by_dev_readme_images():
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    made = {f"docs/images/{name}" for names in readme_images.OUTPUTS.values() for name in names}
    assert shown and set(shown) == made
    for path in shown:
        data = (REPO_ROOT / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path
