"""Run every benchmark under experiments/bench/ (``make bench``; ``--quick`` for short versions)."""

import sys

from geomopt.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
