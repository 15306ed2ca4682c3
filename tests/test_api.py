"""The public API: a small, explicit surface that imports lazily."""

from __future__ import annotations

import subprocess
import sys

import simulator


def test_every_name_in_all_resolves() -> None:
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        simulator.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_loads_neither_faker_nor_jinja_nor_textual() -> None:
    code = "import sys, simulator.cli; print(sorted(m for m in ('faker', 'jinja2', 'textual') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
