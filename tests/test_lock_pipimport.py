"""pip modules a lock never uses, loaded only when used (``lock/pipimport.py``).

Run in a fresh interpreter: this one has imported pip's CLI already.
"""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from photonpack.lock.pipimport import lazy_unused
lazy_unused()
from pip._internal.cli import base_command
print("pip._vendor.pygments.lexers" in sys.modules, "pip._vendor.rich.pretty" in sys.modules)
base_command.rich_traceback.Traceback  # the first use loads it whole
print("pip._vendor.pygments.lexers" in sys.modules, "pip._vendor.rich.pretty" in sys.modules)
"""


def test_pips_traceback_renderer_is_loaded_at_its_first_use_only() -> None:
    argv = [sys.executable, "-c", CHECK]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["False False", "True True", ""]
