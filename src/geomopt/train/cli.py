"""``python -m geomopt train CONFIG.toml [key=value ...] [--resume]``

Exit codes: 0 done (or stopped at ``max_steps_per_call``: rerun with --resume),
2 bad config or missing data (one line on stderr, checked before any work: nothing written),
3 the loss became NaN/inf (the metrics file says status "nonfinite"; the last good
checkpoint is kept), 130 interrupted (Ctrl-C; --resume continues from the last checkpoint).
Under ``torchrun --nproc_per_node=N`` the run is data-parallel (gloo on CPU, nccl on GPU).

``--resume`` continues from ``<checkpoint_dir>/checkpoint.pt`` when it exists (and starts
fresh when it does not); without it a run starts from step 0 and overwrites its outputs.
Overrides: ``key=value`` for fields, ``table.key=value`` for ``[optim]``, ``[adamw]``,
``[grad_transform_args]``; values are TOML (``optim.betas=[0.9,0.95]``, ``name=foo``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

USAGE = "usage: python -m geomopt train CONFIG.toml [key=value ...] [--resume]"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    resume = "--resume" in argv
    args = [a for a in argv if a != "--resume"]
    unknown_flags = [a for a in args if a.startswith("--")]
    if not args or unknown_flags:
        problem = f"unknown option {unknown_flags[0]!r}; " if unknown_flags else "no config file given; "
        print(f"train: {problem}{USAGE}", file=sys.stderr)
        return 2
    config_path, overrides = args[0], args[1:]

    from geomopt.data import DataMissing
    from geomopt.train import run
    from geomopt.train.config import ConfigError, check_data, load_config
    from geomopt.train.dist import init_distributed, shutdown
    from geomopt.train.loop import NonFiniteLoss

    info = init_distributed()
    say = (lambda msg: print(msg, file=sys.stderr)) if info.is_main else (lambda msg: None)
    command = "python -m geomopt train " + shlex.join(argv)
    try:
        cfg = load_config(config_path, overrides)
        check_data(cfg)
        out = run(cfg, resume=resume, command=command, info=info)
    except (ConfigError, DataMissing) as e:
        say(f"train: {e}")
        return 2
    except NonFiniteLoss as e:
        say(f"train: {e}")
        return 3
    except KeyboardInterrupt:
        say("train: interrupted; run the same command with --resume to continue from the last checkpoint")
        return 130
    finally:
        shutdown(info)
    say(f"train: wrote {Path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
