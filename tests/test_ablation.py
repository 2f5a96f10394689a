"""Paper 1's ablation: its plan (make ablate-paper1) and the table the report and figure share."""

import importlib.util
import math

from geomopt.report.ablation import ablation_frame, main_variants, seed_spread
from geomopt.results import REPO_ROOT


def _run_mod():
    spec = importlib.util.spec_from_file_location("paper1_run", REPO_ROOT / "experiments/paper1/run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plan_clean_shrinkage_first_then_the_cauchy_grid(tmp_path):
    import json

    (tmp_path / "tuning.json").write_text(json.dumps({"methods": {"adamw": {"chosen": {"optim.lr": 0.001}}}}))
    configs = _run_mod().ablation_configs("full", "cpu", tmp_path, [])
    names = [c.name for c in configs]
    # each group's same-seed baselines (at their tuned values), then its variants
    assert len(names) == len(set(names)) == 1 + 12 + 2 + 24 + 24
    assert names[0] == "clean__adamw__s0" and configs[0].optim["lr"] == 0.001
    assert all(n.startswith("clean__shrink_adamw-") for n in names[1:13])
    assert names[13:15] == ["cauchy__adamw__s0", "cauchy__muon__s0"]
    assert all(n.startswith("cauchy__") for n in names[13:])
    for c in configs:
        assert c.seed == 0 and c.out_path.parent == tmp_path / "ablation" / "runs"
        assert ("cauchy_noise" in c.grad_transform) == c.name.startswith("cauchy__")
    psi_t_pos = {(c.optim["psi"], c.optim["t"], c.optim["position"]) for c in configs if c.optimizer == "clip_muon"}
    assert ("smooth", 4.0, "momentum") in psi_t_pos and len(psi_t_pos) == 24


def test_ablation_frame_joins_same_seed_baselines_and_marks_the_main_config():
    psi, t, pos = main_variants()["shrink_adamw"]
    finals = {"clean__adamw__s0": 2.0, "protocol__adamw__s1_b100": 2.2, "protocol__adamw__s2_b100": 2.4,
              "protocol__adamw__s1_b50": 9.0, "cauchy__muon__s0": 3.0, "cauchy__muon__s1": 3.1,
              f"clean__shrink_adamw-{psi}-t{t:g}-{pos}__s0": 2.5,
              "clean__shrink_adamw-hard-t2-pre__s0": 1.5,
              "cauchy__clip_muon-soft-t4-momentum__s0": math.inf,  # diverged
              "cauchy__shrink_adamw-hard-t2-pre__s0": 1.0}  # its baseline never ran
    df = ablation_frame(finals)
    assert list(df["group"]) == ["clean", "clean", "cauchy", "cauchy"]
    assert df["psi"].iloc[0] == "hard"  # ψ in PSI_NAMES order: hard, soft, redescend, smooth
    clean = df[df["group"] == "clean"].set_index("psi")
    assert clean.loc["hard", "delta"] == -0.5 and not clean.loc["hard", "main"]
    assert clean.loc[psi, "main"] and clean.loc[psi, "delta"] == 0.5
    cauchy = df[df["group"] == "cauchy"].set_index("method")
    assert cauchy.loc["clip_muon", "delta"] == math.inf
    assert math.isnan(cauchy.loc["shrink_adamw", "delta"])
    # sample sd of the full-budget verdict runs {2.2, 2.4}: not the ablation's seed 0, not a shorter budget
    assert abs(seed_spread(finals, "clean", "adamw") - 0.2 / 2 ** 0.5) < 1e-12
    assert math.isnan(seed_spread(finals, "cauchy", "muon"))  # one verdict seed: no spread
