"""The benchmark runner: one JSON record per benchmark with its ratios; bad names exit 2; the README's
performance table is the one generated from results/bench/."""

import json

import pytest

from geomopt import benchmark
from geomopt.benchmark import main, median_ratios
from geomopt.results import read_json


def test_quick_bench_writes_ratios_per_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv(benchmark.PROCESSES_ENV, "1")  # one process per thread count keeps the test short
    assert main(["--quick", "--only", "muon_step", "--out", str(tmp_path)]) == 0
    rec = read_json(tmp_path / "muon_step.json")
    assert rec["meta"]["quick"] is True and rec["ratio"] > 0
    assert set(rec["ratios"]) == {"1", "2"} and rec["ratios"]["1"]["clip_muon"]["baseline"] == "torch_muon"
    assert rec["denominator"]["what"] == "torch.optim.Muon step"


def test_median_ratio_is_taken_over_processes():
    runs = {"1": [{"seconds": {"a": 2.0, "b": 1.0}}, {"seconds": {"a": 3.0, "b": 1.0}},
                  {"seconds": {"a": 10.0, "b": 2.0}}]}
    one = median_ratios(runs, {"a": "b"})["1"]["a"]
    assert one["ratio"] == 3.0 and one["per_process"] == [2.0, 3.0, 5.0]


def test_unknown_bench_exits_2(tmp_path, capsys):
    assert main(["--only", "no_such_bench", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_readme_performance_table_is_generated_from_results():
    text = benchmark.README.read_text()
    assert benchmark.readme_with_section(text, benchmark.bench_table()) == text, "run make bench (or " \
        "python -c 'from geomopt.benchmark import write_readme_section; write_readme_section()')"


def test_table_lists_every_ratio(tmp_path):
    rec = {"name": "x", "ratio": 1.0, "meta": {"start_time": "2026-01-01T00:00", "git_commit": "abcdef0"},
           "labels": {"c": "ours"}, "goals": {"c": "≤ 1.1"}, "floors": {"c": 11 / 7},
           "ratios": {"1": {"c": {"ratio": 1.04, "baseline": "b"}}, "2": {"c": {"ratio": 1.2, "baseline": "b"}}}}
    (tmp_path / "x.json").write_text(json.dumps(rec))
    assert "| x | ours | b | 1.04 | 1.20 | ≤ 1.1 | 1.57 | 2026-01-01, abcdef0 |" in benchmark.bench_table(tmp_path)
    with pytest.raises(ValueError, match="markers"):
        benchmark.readme_with_section("no markers", "")


def test_tensor_passes_count_the_per_entry_state(monkeypatch):
    """AdamW moves 7 parameter-sized tensors a step; ShrinkAdamW's main variant 11 (its observation mass and
    count too): the memory floor of its ratio to fused AdamW is 11/7."""
    import torch

    from geomopt.optim import get_spec

    monkeypatch.syspath_prepend(str(benchmark.REPO_ROOT / "experiments/bench"))
    from elementwise_step import tensor_passes

    def stepped(opt_cls, **hp):
        opt, _ = benchmark.optimizer_on_random_grads(opt_cls, [(4, 3)], warm_steps=1, **hp)
        return tensor_passes(opt)

    spec = get_spec("shrink_adamw")
    assert stepped(torch.optim.AdamW) == 7 and stepped(spec.cls(), **spec.overrides) == 11
    assert stepped(get_spec("lion").cls()) == 5
