"""The package itself: version, public facade, CLI entry point."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

import photonpack
from photonpack.cli import cli


def test_version_is_reported_by_the_cli() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"photonpack, version {photonpack.__version__}\n"


def test_every_public_name_resolves() -> None:
    for name in photonpack.__all__:
        assert getattr(photonpack, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        getattr(photonpack, "NoSuchThing")  # noqa: B009
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_packaging_side_does_not_import_the_serving_stack() -> None:
    code = (
        "import sys, photonpack, photonpack.cli, photonpack.serving.source, photonpack.errors;"
        "bad = [m for m in ('fastapi', 'uvicorn', 'starlette', 'pydantic') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
