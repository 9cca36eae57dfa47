"""``python -m lexiedge_runtime.tasks OUT.js``: write runtime-js's manifest schema module (tasks.schema)."""

from __future__ import annotations

import sys
from pathlib import Path

from lexiedge_runtime.tasks.schema import write_javascript_module

if len(sys.argv) != 2:
    print("usage: python -m lexiedge_runtime.tasks runtime-js/src/manifest.schema.js", file=sys.stderr)
    raise SystemExit(2)
write_javascript_module(Path(sys.argv[1]))
