"""The docs site builds with `mkdocs build --strict` (a broken link or a page missing from
the nav fails), and the README stays a front page."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def test_the_docs_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists() and shutil.which("mkdocs") is None:
        pytest.skip("mkdocs is in the dev extra")
    res = subprocess.run([str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "tasks" / "replica" / "index.html").exists()


def test_the_readme_is_a_front_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for command in ("symsweep run sweeps/quickstart.yaml", ".venv/bin/python -m pytest"):
        assert command in readme
    for page in ("docs/getting-started.md", "docs/specs.md", "docs/store.md", "docs/reproduction.md"):
        assert page in readme and (REPO / page).exists(), page


def test_the_docs_home_page_is_the_readme_with_its_links_made_site_relative():
    """docs/index.md is README.md for the site (links into docs/ made relative): they must not
    drift, as they did once (the quickstart table was updated in one only)."""
    readme = (REPO / "README.md").read_text().replace("](docs/", "](")
    assert (REPO / "docs" / "index.md").read_text() == readme
