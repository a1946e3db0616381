"""``python -m photonpack.serving.describe --entry ENTRY``: the handler contract as JSON.

The build step runs this inside the photon's own environment and records the
output in the manifest. It imports the photon but never runs ``init()``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from photonpack.serving.app import describe
from photonpack.serving.errors import PhotonpackError
from photonpack.serving.loader import load_photon
from photonpack.serving.source import parse_spec

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Print ``describe(photon)`` as JSON on stdout; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m photonpack.serving.describe")
    parser.add_argument("--entry", required=True, help="file.py[:Class] or pkg.module:Class")
    args = parser.parse_args(argv)
    try:
        contract = describe(load_photon(parse_spec(args.entry)))
    except PhotonpackError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    sys.stdout.write(json.dumps(contract, sort_keys=True, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
