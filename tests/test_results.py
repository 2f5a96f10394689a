import json
import os

import pytest

from geomopt import results
from geomopt.results import RunLog, atomic_write_text, load_runs, read_run, run_meta


def test_atomic_write_crash_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    atomic_write_text(path, "old\n")

    def crash(*a, **k):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new content that must not appear\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.jsonl"]  # no temp file left behind


def test_atomic_write_crash_on_first_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "new.json"

    def crash(*a, **k):
        raise OSError("disk gone")

    monkeypatch.setattr(results.os, "fsync", crash)
    with pytest.raises(OSError):
        atomic_write_text(path, "x")
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_runlog_round_trip_and_metadata(tmp_path):
    meta = run_meta(seed=3, config={"optimizer": "adamw", "lr": 1e-3})
    for key in ("command", "config", "git_commit", "seed", "torch_version", "device", "machine", "start_time"):
        assert key in meta
    log = RunLog(tmp_path / "a.jsonl", meta)
    log.log(step=1, tokens=128, train_loss=2.5)
    log.log(step=2, tokens=256, train_loss=float("nan"), val_loss=2.4)
    log.close(status="done")
    got_meta, df = read_run(tmp_path / "a.jsonl")
    assert got_meta["seed"] == 3 and got_meta["status"] == "done" and "end_time" in got_meta
    assert got_meta["config"]["optimizer"] == "adamw"
    assert list(df["step"]) == [1, 2] and df["train_loss"][0] == 2.5
    assert df["train_loss"][1] == "nan"  # non-finite values survive as strings, JSON stays valid

    log2 = RunLog(tmp_path / "b.jsonl", run_meta(seed=4, config={"optimizer": "muon"}))
    log2.log(step=1, train_loss=1.0)
    log2.close()
    both = load_runs(str(tmp_path / "*.jsonl"))
    assert set(both["optimizer"]) == {"adamw", "muon"} and set(both["seed"]) == {3, 4}


def test_read_run_rejects_malformed(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"meta": {}}\n{"step": 1, "loss": \n')
    with pytest.raises(ValueError, match="bad.jsonl"):
        read_run(bad)
    nohead = tmp_path / "nohead.jsonl"
    nohead.write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match="header"):
        read_run(nohead)


def test_jsonable_handles_numpy_and_torch(tmp_path):
    import numpy as np
    import torch

    results.write_json(tmp_path / "r.json", {"a": np.float32(1.5), "b": torch.tensor([1, 2]), "c": np.arange(3),
                                             "d": float("inf")})
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == {"a": 1.5, "b": [1, 2], "c": [0, 1, 2], "d": "inf"}
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert os.path.getsize(tmp_path / "r.json") > 0
