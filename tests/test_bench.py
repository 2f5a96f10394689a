"""The benchmark runner: one JSON record per benchmark with its ratio; bad names exit 2."""

from geomopt.benchmark import main
from geomopt.results import read_json


def test_quick_bench_writes_a_record_with_its_ratio(tmp_path):
    assert main(["--quick", "--only", "stacey_step", "--out", str(tmp_path)]) == 0
    rec = read_json(tmp_path / "stacey_step.json")
    assert rec["meta"]["quick"] is True and rec["ratio"] > 0
    assert rec["denominator"]["what"].startswith("torch.optim.AdamW")
    assert {"adamw_foreach", "adamw_forloop", "copy", "stacey_p2"} <= set(rec["seconds"])


def test_unknown_bench_exits_2(tmp_path, capsys):
    assert main(["--only", "no_such_bench", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
