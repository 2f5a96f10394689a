import json

from geomopt.report import figures
from geomopt.report.figures import draw_all, figure
from geomopt.results import write_json


def _register_demo():
    @figure("demo/line", needs=["demo/*.json"])
    def draw(inputs, out_base):
        import matplotlib.pyplot as plt

        from geomopt.report.style import save_figure

        fig, ax = plt.subplots()
        for name, rec in inputs.items():
            ax.plot(rec["x"], rec["y"], label=name)
        save_figure(fig, out_base)


def test_empty_results_draws_nothing_and_exits_zero(tmp_path, capsys):
    _register_demo()
    rc = figures.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "figs")])
    assert rc == 0
    assert "nothing to draw" in capsys.readouterr().out


def test_corrupt_file_is_named_and_rest_drawn(tmp_path, capsys):
    _register_demo()

    @figure("demo/other", needs=["other/*.json"])
    def draw_other(inputs, out_base):
        import matplotlib.pyplot as plt

        from geomopt.report.style import save_figure

        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        save_figure(fig, out_base)

    res = tmp_path / "results"
    write_json(res / "demo" / "good.json", {"x": [0, 1, 2], "y": [1, 4, 9]})
    (res / "demo" / "broken.json").write_text('{"x": [0, 1')
    write_json(res / "other" / "fine.json", {})
    rc = figures.main(["--results", str(res), "--out", str(tmp_path / "figs")])
    out = capsys.readouterr().out
    assert "broken.json" in out and rc == 1
    assert (tmp_path / "figs" / "demo" / "line.png").exists()  # drawn from the good file
    assert (tmp_path / "figs" / "demo" / "line.pdf").exists()
    assert (tmp_path / "figs" / "demo" / "other.png").exists()
    figures.REGISTRY.pop("demo/other")


def test_make_figures_cli_on_empty_results(tmp_path, python):
    import subprocess

    r = subprocess.run([python, "-m", "geomopt", "figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "nothing to draw" in r.stdout


def test_style_has_fixed_colours():
    from geomopt.report.style import optimizer_style

    assert optimizer_style("adamw") == optimizer_style("adamw")
    assert optimizer_style("adamw")[1] != optimizer_style("muon")[1]
    assert optimizer_style("never-seen")[0] == "never-seen"
    json.dumps(optimizer_style("muon")[0])


def test_optional_inputs_join_but_never_draw_alone(tmp_path):
    seen = []

    @figure("demo/opt", needs=["need/*.json"], optional=["base/*.json"])
    def draw_opt(inputs, out_base):
        seen.append(sorted(inputs))

    try:
        res = tmp_path / "results"
        write_json(res / "base" / "b.json", {})
        assert draw_all(res, tmp_path / "figs", only=["demo/opt"], out=lambda *_: None) == (0, [])
        write_json(res / "need" / "n.json", {})
        assert draw_all(res, tmp_path / "figs", only=["demo/opt"], out=lambda *_: None) == (1, [])
        assert seen == [["base/b.json", "need/n.json"]]
    finally:
        figures.REGISTRY.pop("demo/opt")


def test_every_committed_figure_has_its_inputs_committed():
    """`make figures` on a fresh clone redraws every committed figure: its inputs are tracked files."""
    import importlib
    import subprocess

    import pytest

    from geomopt.results import REPO_ROOT

    try:
        tracked = subprocess.run(["git", "ls-files", "results", "figures"], cwd=REPO_ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for mod in figures.FIGURE_MODULES:
        importlib.import_module(mod)
    results = [REPO_ROOT / p for p in tracked if p.startswith("results/")]
    missing = []
    for fig in figures.REGISTRY.values():
        if f"figures/{fig.name}.png" in tracked and not any(
                p.match(f"results/{pat}") for pat in fig.needs for p in (r.relative_to(REPO_ROOT) for r in results)):
            missing.append(fig.name)
    assert not missing, f"committed figures whose inputs are not committed: {missing}"
