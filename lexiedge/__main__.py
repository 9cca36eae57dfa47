import sys

from lexiedge.cli import main

sys.exit(main())
