#!/usr/bin/env python3
"""Create the polls database: the same as `python -m aiohttpdemo_polls init-db` (see --help)."""

import sys

from aiohttpdemo_polls import setup_db

if __name__ == "__main__":
    sys.exit(setup_db.main())
