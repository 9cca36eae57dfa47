"""``python -m lexiedge_runtime.serve ARTIFACT...``: the server, without the console script."""

import sys

from lexiedge_runtime.serve.cli import main

sys.exit(main(prog="python -m lexiedge_runtime.serve"))
