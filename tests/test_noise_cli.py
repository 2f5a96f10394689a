"""``python -m geomopt noise``: a tiny config end to end, bad input, and the measured run
training on the batches a plain run would."""

import subprocess
import sys

import pytest
import torch

from geomopt.noise import diagnostic
from geomopt.results import read_json

TINY = """name = "tiny"
task = "gpt"
dataset = "shakespeare_char"
n_layer = 1
n_head = 2
n_embd = 16
seq_len = 16
batch_size = 4
steps = 6
warmup_steps = 2
eval_tokens = 64
device = "cpu"
[optim]
lr = 3e-3
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_cli_prints_the_table_and_writes_figure_and_json(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert diagnostic.main([str(tiny), "--samples", "4", "--large", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for cls in ("embeddings", "head", "hidden", "gains"):
        assert cls in printed
    assert "α̂ of N/s (surr)" in printed and "\nreading at 100% (step 6): " in printed
    record = read_json(out / "noise.json")
    assert list(record["points"]) == ["0%", "25%", "50%", "100%"]
    assert [p["step"] for p in record["points"].values()] == [0, 2, 3, 6]  # round(frac · 6)
    assert record["reading"] in printed and record["meta"]["git_commit"]
    assert record["meta"]["config"]["steps"] == 6  # the config's own length: shorter than --steps
    assert (out / "noise.png").stat().st_size > 0


def test_cli_init_only_and_the_short_run(tiny, tmp_path):
    out = tmp_path / "o"
    assert diagnostic.main([str(tiny), "steps=40", "--steps", "10", "--init-only", "--samples", "4", "--large", "1",
                            "--out", str(out)]) == 0
    record = read_json(out / "noise.json")
    assert list(record["points"]) == ["0%"] and record["total_steps"] == 10
    assert record["meta"]["config"]["warmup_steps"] == round(2 * 10 / 40)  # the schedule compressed


def _exit_code(argv):
    try:
        return diagnostic.main(argv)
    except SystemExit as e:  # argparse's errors
        return e.code


@pytest.mark.parametrize("args, says", [
    (["optim.lr=0.1", "bogus_key=3"], "config key 'bogus_key' unknown"),
    (["--points", "50,10"], "--points"),
    (["--samples", "2"], "--samples"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tiny, tmp_path, capsys, args, says):
    out = tmp_path / "never"
    assert _exit_code([str(tiny), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unknown_config_file_exits_2_from_the_shell(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "geomopt", "noise", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not found" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_only_default_settings_write_under_results_noise(tiny):
    assert diagnostic._is_standard(diagnostic._parse([str(tiny)]))
    for extra in (["steps=3"], ["--init-only"], ["--steps", "7"], ["--samples", "6"]):
        assert not diagnostic._is_standard(diagnostic._parse([str(tiny), *extra])), extra


def test_the_measured_run_trains_on_the_batches_of_a_plain_run(tiny):
    from geomopt.train import load_config
    from geomopt.train.loop import Trainer

    cfg = load_config(tiny, ["progress=false"])
    plain, measured = Trainer(cfg), Trainer(cfg)
    for _ in range(plain.total_steps):
        plain.train_step(check=False)
    diagnostic.measure_over_run(measured, [0.0, 0.5, 1.0], large=1, samples=4)
    assert measured.step == plain.step
    for (name, a), b in zip(plain.model.named_parameters(), measured.model.parameters()):
        assert torch.equal(a, b), name
