"""``python -m geomopt <command>``: train, figures, data, readme-table, claims."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("geomopt.train.cli", "Train one run from a TOML config (key=value overrides, --resume)."),
    "figures": ("geomopt.report.figures", "Regenerate every figure under figures/ from results/."),
    "data": ("geomopt.data.catalog", "Locate or install the offline datasets; say what is missing."),
    "readme-table": ("geomopt.report.readme", "Write results/claims.json and the README's results table from it."),
    "claims": ("geomopt.report.claims", "Write the claims registry results/claims.json from results/."),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        names = "\n".join(f"  {k:14s} {v[1]}" for k, v in COMMANDS.items())
        given = f"unknown command {argv[0]!r}; " if argv and argv[0] not in ("-h", "--help") else ""
        print(f"{given}usage: python -m geomopt COMMAND [...]\n{names}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
