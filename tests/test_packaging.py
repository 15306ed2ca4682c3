"""A plain (non-editable) install carries the templates and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)], check=True)
    return next(out.glob("wasim-*.whl"))


def test_the_wheel_ships_templates_inside_the_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "simulator/_data/templates/button_tap.json.j2" in names
    assert "simulator/cli.py" in names
    assert "simulator/tui/app.tcss" in names  # the UI's styles travel with it
    assert any(n.endswith("entry_points.txt") for n in names)


def test_an_installed_copy_renders_from_an_unrelated_directory(wheel: Path,
                                                               tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import simulator; print(simulator.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))
    rendered = subprocess.run([sys.executable, "-m", "simulator", "render", "--seed", "7"],
                              cwd=elsewhere, env=env, capture_output=True, check=True)
    assert rendered.stdout == (ROOT / "tests" / "golden" / "render_seed7.json").read_bytes()


def test_the_wheel_offers_distributed_load_as_the_locust_extra(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    assert "simulator/locust.py" in archive.namelist()
    metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    text = archive.read(metadata).decode()
    assert "Provides-Extra: locust" in text
    assert "Requires-Dist: locust<3,>=2.30; extra == 'locust'" in text
