"""Every `lexiedge` command loads the plugin host and builds the CLI first: that part stays light, so
`--help`, a typo or a bad flag answers in a fraction of a second instead of after importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "matplotlib", "transformers", "onnxruntime", "peft", "datasets")

SCRIPT = f"""
import json, sys
from lexiedge.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"exit": code, "heavy": [name for name in {HEAVY!r} if name in sys.modules]}}))
"""


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_and_a_mistyped_command_import_no_heavy_library() -> None:
    assert _run("--help") == {"exit": 0, "heavy": []}
    assert _run("plna") == {"exit": 2, "heavy": []}
    assert _run("plugins") == {"exit": 0, "heavy": []}
