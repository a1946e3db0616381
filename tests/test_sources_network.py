"""Real sdist-only packages from PyPI: locked, built hermetically, served offline (network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from photonpack.build import BuildOptions, build
from photonpack.serving.source import parse_spec
from photonpack.store import Store
from tests.support.offline import serve_offline
from tests.support.stack import write_photon

pytestmark = pytest.mark.network

SOURCE = """
from photonpack import Photon


class Parsers(Photon):
    requirement_dependency = ["docopt==0.6.2", "antlr4-python3-runtime==4.9.3"]

    @Photon.handler
    def parse(self, argv: list[str]) -> dict:
        import antlr4
        from docopt import docopt

        arguments = docopt("usage: prog [--fast] <name>", argv=argv)
        return {"name": arguments["<name>"], "antlr4": antlr4.__name__}
"""


def test_docopt_and_antlr4_from_pypi_are_built_and_served_offline(tmp_path: Path) -> None:
    photon = write_photon(tmp_path / "src", SOURCE, "parsers.py")
    result = build(
        parse_spec(str(photon)),
        BuildOptions(output=tmp_path / "parsers.photon"),
        store=Store(tmp_path / "home"),
    )
    built = {w.name: w for w in result.manifest.wheels if w.source is not None}
    assert sorted(built) == ["antlr4-python3-runtime", "docopt"]
    assert built["docopt"].source.filename == "docopt-0.6.2.tar.gz"  # type: ignore[union-attr]
    assert all(w.filename.endswith("-none-any.whl") for w in built.values())
    output = serve_offline(
        result.path, tmp_path / "airgap", "print(client.parse(argv=['x']))", port=18961
    )
    assert "'name': 'x'" in output and "'antlr4': 'antlr4'" in output
