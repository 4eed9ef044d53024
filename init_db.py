#!/usr/bin/env python3
"""Create the polls database: the same as `python -m aiohttpdemo_polls init-db` (see --help)."""

import sys

from aiohttpdemo_polls.store import provision

if __name__ == "__main__":
    sys.exit(provision.main())
