"""Paper 1's report: the main-variant table is read from the property record, never typed in."""

import importlib.util
import json

from geomopt.results import REPO_ROOT


def _report(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "experiments/paper1"))  # undone after the test
    spec = importlib.util.spec_from_file_location("paper1_report", REPO_ROOT / "experiments/paper1/report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_main_variant_table_lists_what_passes_and_the_first_failure(tmp_path, monkeypatch):
    main_variant = _report(monkeypatch).main_variant
    assert main_variant(tmp_path) == []
    ok = {p: {"pass": True} for p in ("iid", "jump", "rare", "cauchy")}
    rec = {"betas": [0.9, 0.99], "entries": 10, "properties": ["iid", "jump", "rare", "cauchy"],
           "variants": {"main": {"second_moment": "winsor", "warmup": "entry"}},
           "rows": [{"variant": "main", "psi": "smooth", "t": 3.0, **ok, "all_pass": True},
                    {"variant": "main", "psi": "redescend", "t": 2.0, **ok, "rare": {"pass": False},
                     "all_pass": False}]}
    (tmp_path / "shrink_properties.json").write_text(json.dumps(rec))
    row = next(line for line in main_variant(tmp_path) if line.startswith("| main"))
    assert "smooth 3" in row.split("|")[2] and "redescend 2 (rare)" in row.split("|")[3]


def test_plain_answer_names_the_decided_arms_and_budgets(monkeypatch):
    from types import SimpleNamespace as NS

    from geomopt.report import verdict

    plain_answer = _report(monkeypatch).plain_answer

    def row(method, budget, word, delta):
        res = NS(decision=NS(word=word), saving=None, delta_final=NS(interval=NS(mean=delta)))
        return {"group": "clean", "method": method, "budget": budget, "res": res}

    rows = [row(m, b, verdict.INCONCLUSIVE, 0.0) for m in ("shrink_adamw", "shrink_adamw_heavy") for b in (25, 50, 100)]
    assert "not detectably" in plain_answer(rows, [])[0] and "shrink_adamw's advantage stays flat" in plain_answer(rows, [])[0]
    rows[-1] = row("shrink_adamw_heavy", 100, verdict.CONTRADICTED, 0.16)
    text = plain_answer(rows, [])[0]
    assert "no: it costs tokens (shrink_adamw_heavy at 100%" in text and "100% Δloss +0.160" in text
    rows[0] = row("shrink_adamw", 25, verdict.REPRODUCED, -0.2)
    assert "mixed: saves (shrink_adamw at 25%), costs (shrink_adamw_heavy at 100%)" in plain_answer(rows, [])[0]
    text = plain_answer(rows, [])[0]  # shrink_adamw: Δ −0.2, 0, 0 (the advantage shrinks); heavy: 0, 0, +0.16
    assert "shrink_adamw's advantage shrinks (Δ final loss -0.200 → +0.000 → +0.000)" in text
    assert "shrink_adamw_heavy's advantage shrinks (Δ final loss +0.000 → +0.000 → +0.160)" in text
    rows[1:3] = [row("shrink_adamw", 50, verdict.INCONCLUSIVE, -0.3), row("shrink_adamw", 100, verdict.INCONCLUSIVE, -0.4)]
    assert "shrink_adamw's advantage grows (Δ final loss -0.200 → -0.300 → -0.400)" in plain_answer(rows, [])[0]
    rows[2] = row("shrink_adamw", 100, verdict.INCONCLUSIVE, -0.1)
    assert "shrink_adamw's advantage moves both ways" in plain_answer(rows, [])[0]


def test_redescending_reading_says_the_cost_shrinks_with_t_only_when_it_does(monkeypatch):
    import pandas as pd

    rep = _report(monkeypatch)

    def sub(deltas_by_t):  # clipping ψ at +0.05; the redescending ψ at the given Δ per t
        rows = [{"psi": "hard", "t": t, "delta": 0.05} for t in deltas_by_t]
        rows += [{"psi": p, "t": t, "delta": d} for t, d in deltas_by_t.items() for p in rep.REDESCENDING]
        return pd.DataFrame(rows)

    assert "shrinks as t grows" in rep.redescending_reading(sub({2.0: 0.3, 3.0: 0.2, 4.0: 0.1}), explain=False)[0]
    assert "shrinks as t grows" not in rep.redescending_reading(sub({2.0: 0.112, 3.0: 0.099, 4.0: 0.111}),
                                                                explain=False)[0]


def test_ablation_reading_ranks_the_main_config_and_names_variants_that_beat_the_baseline(monkeypatch):
    from geomopt.report.ablation import ablation_frame, main_variants

    rep = _report(monkeypatch)
    psi, t, pos = main_variants()["shrink_adamw"]
    finals = {"clean__adamw__s0": 2.0, "protocol__adamw__s1_b100": 2.0, "protocol__adamw__s2_b100": 2.02,
              f"clean__shrink_adamw-{psi}-t{t:g}-{pos}__s0": 2.1, "clean__shrink_adamw-hard-t2-pre__s0": 2.05,
              "clean__shrink_adamw-soft-t2-pre__s0": 1.9}
    text = "\n".join(rep.ablation_reading(ablation_frame(finals), finals))
    assert "the main config ranks 3/3 here" in text and "Δ across the variants -0.100 … +0.100" in text
    assert "1 beat it by more than one sd: ψ=soft t=2 pre." in text
