"""Run every numeric check under theory/ (``make theory``; ``--quick`` for the quick modes, whose
records go to results/quick/theory). Ctrl-C: one line, exit 130; the finished checks' records stay."""

import sys

from geomopt.report.checks import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("theory: interrupted (the records of the checks that finished are kept); run the same command again",
              file=sys.stderr)
        sys.exit(130)
