"""Paper 1's ShrinkAdamW trace: the share of entries beyond t·√v̂ read at ψ's input, and √v̂ against AdamW."""

import importlib.util
import math

import pytest

from geomopt.results import REPO_ROOT, read_json


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("paper1_run", REPO_ROOT / "experiments/paper1/run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("trace")
    make = mod.maker("cpu", out, mod.scale("quick", "cpu") + ["total_tokens=6_144", "seed=0"])
    configs = [make(m, mod.split_search(mod.load_methods()[m])[0], [], f"protocol__{m}__s0")
               for m in ("adamw", "shrink_adamw")]
    mod.trace_shrink(configs, out, every=2)
    return read_json(out / "shrink_trace.json"), out


def test_trace_records_shares_in_range_and_cleans_up(trace):
    rec, out = trace
    assert rec["psi"] == "smooth" and rec["t"] == 3.0 and rec["steps"] == 12
    assert [r["step"] for r in rec["rows"]] == [2, 4, 6, 8, 10]
    assert rec["rows"][0]["persistent_frac"] is None
    for r in rec["rows"]:
        assert 0.0 <= r["frac_beyond_t"] <= 1.0
        assert r["persistent_frac"] is None or 0.0 <= r["persistent_frac"] <= 1.0
    assert set(rec["matrices"]) <= set(rec["rms_sqrt_vhat_ratio"])
    assert all(math.isfinite(v) and v > 0 for v in rec["rms_sqrt_vhat_ratio"].values())
    assert rec["meta"]["seed"] == 0
    assert not list(out.glob("trace_scratch_*"))


def test_before_warmup_nothing_is_counted(trace):
    rec, _ = trace
    # ShrinkAdamW's default warm-up is 10 steps: the ψ input is not formed before, so step 2..8 count nothing
    assert all(r["frac_beyond_t"] == 0.0 for r in rec["rows"] if r["step"] < 10)
