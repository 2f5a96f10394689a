"""Run every numeric check under theory/ (``make theory``; ``--quick`` for the quick modes)."""

import sys

from geomopt.report.checks import main

if __name__ == "__main__":
    sys.exit(main())
