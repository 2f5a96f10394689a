"""One results format for every run, check and benchmark.

A *run file* is JSON Lines: the first line is ``{"meta": {...}}`` (command line,
full config, git commit, seed, torch version, the installed versions of the scientific
packages, device, machine, start/end time),
every further line is one logged row (a dict of scalars). A *record* (theory
check, benchmark) is a single JSON object with a ``meta`` key.

Every write goes to a temporary file in the same directory followed by
``os.replace``, so a killed process leaves either the previous file or none,
never a truncated one.
"""

from __future__ import annotations

import datetime as _dt
import glob as _glob
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file + rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(x: Any) -> Any:
    """Convert numpy / torch scalars and arrays, paths and non-finite floats to JSON."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)  # "nan", "inf": JSON has no such numbers
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / torch
        return _jsonable(x.tolist())
    if hasattr(x, "item"):
        return _jsonable(x.item())
    if hasattr(x, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(x))
    return str(x)


def write_json(path: str | os.PathLike, obj: dict) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=1) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)


def git_commit() -> str:
    """HEAD of the repo this package lives in, with ``-dirty`` if the tree has changes."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", "-C", str(REPO_ROOT), *a], capture_output=True, text=True, timeout=120
        )
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return "cpu"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# The packages whose version can change a number we report (those installed are recorded).
SCIENTIFIC_PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "scikit-learn", "tokenizers",
                       "tqdm")


def package_versions(names=SCIENTIFIC_PACKAGES) -> dict[str, str]:
    """``{name: version}`` of those of ``names`` that are installed (importlib.metadata: nothing is imported)."""
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def run_meta(seed: int | None = None, config: Any = None, command: str | None = None) -> dict:
    """The metadata every results file carries."""
    import torch

    return {
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": _jsonable(config) if config is not None else None,
        "git_commit": git_commit(),
        "seed": seed,
        "torch_version": torch.__version__,
        "packages": package_versions(),
        "device": device_name(),
        "machine": {
            "node": platform.node(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "start_time": now_iso(),
    }


class RunLog:
    """Rows of one run, flushed atomically to a JSONL file with a metadata header.

    The rows live in memory (a run logs at most a few thousand) so that every
    flush rewrites a complete file; ``rows`` can be saved in a checkpoint and
    handed back on resume so that a resumed run writes the same file.
    """

    def __init__(self, path: str | os.PathLike, meta: dict, rows: Iterable[dict] = ()):
        self.path = Path(path)
        self.meta = dict(meta)
        self.rows: list[dict] = [dict(r) for r in rows]

    def log(self, **row: Any) -> None:
        self.rows.append(_jsonable(row))

    def flush(self, **final_meta: Any) -> None:
        meta = {**self.meta, **final_meta}
        lines = [json.dumps({"meta": _jsonable(meta)})]
        lines += [json.dumps(r) for r in self.rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n")

    def close(self, **final_meta: Any) -> None:
        self.flush(end_time=now_iso(), **final_meta)


def read_run(path: str | os.PathLike):
    """Load one run file: returns ``(meta, DataFrame of rows)``. Raises ValueError if malformed."""
    import pandas as pd

    path = Path(path)
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty run file")
    try:
        head = json.loads(lines[0])
        rows = [json.loads(ln) for ln in lines[1:]]
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON Lines ({e})") from None
    if not isinstance(head, dict) or "meta" not in head:
        raise ValueError(f"{path}: first line is not a {{'meta': ...}} header")
    return head["meta"], pd.DataFrame(rows)


def load_runs(pattern: str | os.PathLike | Iterable[str | os.PathLike]):
    """Load every run matching a glob (or a list of paths) into one DataFrame.

    Adds the columns ``run`` (file stem), ``path``, ``seed`` and, from the
    config, ``optimizer`` and ``name`` when present.
    """
    import pandas as pd

    if isinstance(pattern, (str, os.PathLike)):
        paths = sorted(_glob.glob(str(pattern), recursive=True))
    else:
        paths = [str(p) for p in pattern]
    frames = []
    for p in paths:
        meta, df = read_run(p)
        cfg = meta.get("config") or {}
        df = df.assign(run=Path(p).stem, path=p, seed=meta.get("seed"))
        for key in ("optimizer", "name"):
            if isinstance(cfg, dict) and key in cfg:
                df[key] = cfg[key] if not isinstance(cfg[key], dict) else json.dumps(cfg[key])
        frames.append(df)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
