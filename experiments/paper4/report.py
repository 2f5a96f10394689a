"""results/paper4/ -> results/paper4/REPORT.md and results/paper4/claims.json (every number read
from the results files written by experiments/paper4/run.py and theory/immunization_linear.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from geomopt.report import verdict
from geomopt.report.claims import paper_summary, record
from geomopt.results import REPO_ROOT, atomic_write_text, read_json, read_run, write_json

METHODS = ("ours", "opt_kappa", "rill_only")
LABEL = {"ours": "Ours (Alg. 1)", "opt_kappa": "Opt κ (reconstructed)", "rill_only": "R_ill Only",
         "ours_right_precond": "Ours, ∇θ·K⁻¹ (public code's side; ablation)",
         "ours_no_precond": "Ours, no K⁻¹ (ablation)", "ours_ridge_1e-2": "Ours, ridge 1e-2·tr(K)/d (ablation)", "whitening_ceiling": "θ = K_P^{-½} (RIR ceiling)"}
PAPER_T1 = {"rill_only": (90.02, 72.42, 1.24), "imma": (7.05, 3.55, 2.00), "opt_kappa": (1.52, 0.016, 92.58),
            "ours": (18.92, 0.053, 356.20)}
PAPER_T2 = {"rill_only": 1.93, "imma": 1.77, "opt_kappa": 69.73, "ours": 70.04}
PAPER_SUCCESS = {"rill_only": 0, "imma": 1, "opt_kappa": 58, "ours": 90}
RUN = "python experiments/paper4/run.py"
SETUP = [
    "## Setup and choices (ours where the paper is silent)", "",
    "- Linear extractor θ, full-batch GD, closed-form gradients (Thm 4.2), θ-side K⁻¹ preconditioning "
    "(K + ε I)⁻¹·∇θ with ε = 1e-6·tr(K)/d (Alg. 1; the public code's ∇θ·K⁻¹ is an ablation row only).",
    "- k in R_ill (and p in R_well) = rank of the Hessian, fixed from rank K (spec pitfall 1); κ over the nonzero "
    "spectrum (threshold 1e-9·σ_max when a rank is not known).",
    "- λ by gradient-norm balancing, our rule: each preconditioned regularizer gradient is rescaled to ‖θ_t‖_F "
    "every step (the task gradient is not rescaled). η is scaled by 8/√Din so θ moves equally far per step at "
    "every Din.",
    "- ω₀ = 0; image D_P targets are a constant 1 (public code: 0, degenerate; κ does not depend on targets).",
    "- Opt κ is reconstructed: λ/log κ(H_H) + λ·log κ(H_P), same loop, preconditioning and balancing as Ours.",
    "- Fashion-MNIST's 90-pair grid uses 2×2 average-pooled images (Din = 196) for CPU time; four pairs run at "
    "Din = 784 with 10 steps only.",
    "",
]


def to_records(claims: list[dict]) -> list[dict]:
    """This report's claims as registry records (geomopt.report.claims)."""
    out = []
    for c in claims:
        slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in c["claim"].lower())
        source = c["claim"].split(":")[0].split(" (")[0] if c["claim"].startswith(("Table", "Fig")) else "Table 1 / spec"
        out.append(record("paper4", "-".join(filter(None, slug.split("-")))[:70], c["claim"], c["paper"], source,
                          c["ours"], c["decision"], {"model": "linear θ / small CNN", "data": "see REPORT"},
                          "results/paper4/REPORT.md", c["command"]))
    return out


def success(df):
    """Our success criterion (the paper's is unknown, spec §5): RIR > 1 and (ii) ≤ 1."""
    return (df["rir"].astype(float) > 1) & (df["ii"].astype(float) <= 1)


def pair_stats(df) -> dict:
    out = {}
    for m in METHODS:
        d = df[df["method"] == m]
        if d.empty:
            continue
        rir = d["rir"].astype(float)
        out[m] = {"n": len(d), "mean_rir": float(rir.mean()), "median_rir": float(rir.median()),
                  "std_ln_rir": float(np.log(rir.clip(lower=1e-300)).std()),
                  "mean_i": float(d["i"].astype(float).mean()), "mean_ii": float(d["ii"].astype(float).mean()),
                  "success": int(success(d).sum()), "rir_gt_1": int((rir > 1).sum()),
                  "diverged": int(d["diverged_at"].notna().sum()) if "diverged_at" in d else 0}
    return out


def _fmt(x):
    x = float(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def tabular_section(rec, claims):
    rows = {r["method"]: r for r in rec["rows"]}
    lines = ["## Table 1 analogue: linear model on tabular data", "", rec["description"] + ".",
             "House Prices (Kaggle) is not available offline; this is the stand-in (Din = 8).", "",
             "| method | (i) κ_H ratio ↑ | (ii) κ_P ratio ↓ | RIR ↑ | D_P loss at θ_I (ω from Alg. 1) | paper (House Prices) (i) / (ii) / RIR |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        paper = PAPER_T1.get(name)
        lines.append(f"| {LABEL.get(name, name)} | {_fmt(r['i'])} | {_fmt(r['ii'])} | {_fmt(r['rir'])} | "
                     f"{_fmt(r['task_loss'])} | {' / '.join(map(str, paper)) if paper else '–'} |")
    lines.append(f"| IMMA | not reproducible (see below) | | | | {' / '.join(map(str, PAPER_T1['imma']))} |")
    ceiling = rows["whitening_ceiling"]["rir"]
    lines += ["", f"No invertible θ can exceed RIR = {_fmt(ceiling)} here: RIR(θ) ≤ κ(K_P^{{-½}}K_HK_P^{{-½}})·κ(K_P)/κ(K_H) "
              "(κ(BᵀMB) ≤ κ(M)κ(BᵀB) with B = K_P^{½}θ), attained by whitening D_P. The two sexes have similar "
              "covariances, so this data set is hard to immunize at all; House Prices' MSZoning split evidently is not.", ""]
    best = max(METHODS, key=lambda m: rows[m]["rir"])
    claims.append({"claim": "Table 1: Alg. 1 (Ours) gives the largest RIR on the linear tabular task",
                   "command": f"{RUN} --only tabular",
                   "ours": "; ".join(f"{LABEL[m]} RIR {_fmt(rows[m]['rir'])}" for m in METHODS)
                   + f" (ceiling {_fmt(ceiling)}; diabetes stand-in)",
                   "paper": "House Prices: Ours 356.20, Opt κ 92.58, IMMA 2.00, R_ill Only 1.24",
                   "decision": verdict.exact(best == "ours", f"best: {LABEL[best]} (deterministic full-batch GD)")})
    ro = rows["rill_only"]
    claims.append({"claim": "R_ill Only raises κ on D_H and D_P alike ((i), (ii) ≫ 1, RIR ≈ 1)",
                   "command": f"{RUN} --only tabular",
                   "ours": f"(i) {_fmt(ro['i'])}, (ii) {_fmt(ro['ii'])}, RIR {_fmt(ro['rir'])}",
                   "paper": "(i) 90.02, (ii) 72.42, RIR 1.24",
                   "decision": verdict.exact(ro["i"] > 1.5 and ro["ii"] > 1.5 and ro["rir"] < 2,
                                            "our reading: (i), (ii) > 1.5 and RIR < 2")})
    left, right = rows["ours"], rows["ours_right_precond"]
    claims.append({"claim": "Spec pitfall 2: K⁻¹·∇θ (Alg. 1) vs the public code's ∇θ·K⁻¹",
                   "command": f"{RUN} --only tabular",
                   "ours": f"left RIR {_fmt(left['rir'])} ((ii) {_fmt(left['ii'])}); right RIR {_fmt(right['rir'])} "
                           f"((ii) {_fmt(right['ii'])})",
                   "paper": "Alg. 1 / Thm 4.3 use K⁻¹·∇θ (not compared in the paper)",
                   "decision": verdict.exact(left["rir"] > right["rir"], "claim read: Alg. 1's side gives the larger RIR")})
    return lines


def pairs_section(name, path, paper_ref, claims):
    meta, df = read_run(path)
    cfg = meta.get("config") or {}
    stats = pair_stats(df)
    lines = [f"## Table 2 analogue: {name}", "",
             f"Config: {', '.join(f'{k}={v}' for k, v in cfg.items())}.",
             "Success (ours; the paper's criterion is unknown): RIR > 1 and (ii) ≤ 1.", "",
             "| method | pairs | mean RIR | median RIR | std ln RIR | mean (i) | mean (ii) | success | RIR > 1 | diverged |"
             + (" paper mean RIR (MNIST) | paper successes |" if paper_ref else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if paper_ref else "")]
    for m, s in stats.items():
        lines.append(f"| {LABEL[m]} | {s['n']} | {_fmt(s['mean_rir'])} | {_fmt(s['median_rir'])} | {s['std_ln_rir']:.2f} | "
                     f"{_fmt(s['mean_i'])} | {_fmt(s['mean_ii'])} | {s['success']}/{s['n']} | {s['rir_gt_1']}/{s['n']} | "
                     f"{s['diverged']} |" + (f" {PAPER_T2[m]} | {PAPER_SUCCESS[m]}/90 |" if paper_ref else ""))
    lines.append("")
    if {"ours", "rill_only", "opt_kappa"} <= stats.keys():
        o, r, k = stats["ours"], stats["rill_only"], stats["opt_kappa"]
        ok = o["mean_rir"] > r["mean_rir"] and o["success"] >= k["success"] and o["success"] > r["success"]
        wider = k["std_ln_rir"] > 1.5 * o["std_ln_rir"]  # "much larger variance" of Opt κ
        claims.append({"claim": f"Table 2 / Fig. 2 ({name}): Ours succeeds on most pairs and beats R_ill Only; Opt κ "
                                "has a much larger variance",
                       "command": f"{RUN} --only {'digits' if 'digits' in name else 'fmnist'}",
                       "ours": (f"mean RIR Ours {_fmt(o['mean_rir'])} ({o['success']}/{o['n']} succ.), Opt κ "
                                f"{_fmt(k['mean_rir'])} ({k['success']}/{k['n']}, std ln {k['std_ln_rir']:.1f} vs "
                                f"{o['std_ln_rir']:.1f}), R_ill Only {_fmt(r['mean_rir'])} ({r['success']}/{r['n']})"),
                       "paper": "MNIST: Ours 70.04 (90/90), Opt κ 69.73 (58/90), IMMA 1.77 (1/90), R_ill Only 1.93 (0/90)",
                       "decision": verdict.exact(ok and wider and o["success"] == o["n"],
                                                f"beats R_ill Only: {ok}; Opt κ wider: {wider}; all pairs "
                                                f"succeed: {o['success'] == o['n']}")})
        claims.append({"claim": f"Table 2 ({name}): mean RIR of Ours ≥ mean RIR of Opt κ",
                       "command": f"{RUN} --only {'digits' if 'digits' in name else 'fmnist'}",
                       "ours": f"Ours {_fmt(o['mean_rir'])} (median {_fmt(o['median_rir'])}), Opt κ "
                               f"{_fmt(k['mean_rir'])} (median {_fmt(k['median_rir'])})",
                       "paper": "MNIST: Ours 70.04, Opt κ 69.73",
                       "decision": verdict.exact(o["mean_rir"] >= k["mean_rir"], "deterministic per pair")})
    return lines


def curves_section(tab, cur, claims):
    lines = ["## Fig. 1 / Fig. 3 analogue: linear-probe norm ratios (Eq. 16, exact line search)", "",
             "‖w_t − w*‖²/‖w_0 − w*‖² at step 50 (higher on D_H = slower attacker; lower on D_P = faster).", "",
             "| data | probe | before | Ours | Opt κ | R_ill Only |", "|---|---|---|---|---|---|"]
    moved_right = []
    for label, rec in (("diabetes", tab), ("digits " + "→".join(map(str, cur["pair"])) if cur else "", cur)):
        if not rec:
            continue
        c = rec["curves"]
        for split in ("D_H", "D_P"):
            at = {m: float(np.asarray(c[m][split], float)[50]) for m in ("identity", *METHODS) if m in c}
            lines.append(f"| {label} | {split} | " + " | ".join(_fmt(at[m]) for m in ("identity", *METHODS)) + " |")
            slower = at["ours"] > at["identity"] if split == "D_H" else at["ours"] < at["identity"]
            moved_right.append(slower)
    lines.append("")
    claims.append({"claim": "Fig. 1: after Ours, probing is slower on D_H and faster on D_P",
                   "command": f"{RUN} --only tabular curves",
                   "ours": f"{sum(moved_right)}/{len(moved_right)} (data, probe) cells move the right way at step 50",
                   "paper": "House Prices: D_H slower, D_P faster for Ours and Opt κ",
                   "decision": verdict.exact(all(moved_right), f"{sum(moved_right)}/{len(moved_right)} cells")})
    return lines


def deep_section(rec, claims):
    lines = ["## Table 3 analogue: small CNN, last block immunized (experiments/paper4/deep.py)", "",
             "D_P = Fashion-MNIST classes 0–4 (pre-training), D_H = classes 5–9; one seed. θ₀ D_P accuracy: "
             f"head {rec['theta0']['acc_P_head']:.3f}, least-squares probe {rec['theta0']['acc_P_probe']:.3f}. "
             f"Run time {rec['seconds']} s." + (
                 f" θ₀ pre-trained through geomopt.train ({rec['pretrain']['steps']} steps, D_P test accuracy "
                 f"{rec['pretrain']['val_acc_P']:.3f}), reloaded from the trainer's checkpoint." if "pretrain" in rec else ""),
             "",
             "| method | (i) ↑ | (ii) ↓ | RIR_θ₀ (20×100) ↑ | RIR on all features | D_P acc (Alg. 1 head) | D_P acc (refit probe) |",
             "|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        lines.append(f"| {LABEL[r['method']]} | {_fmt(r['i_groups'])} | {_fmt(r['ii_groups'])} | "
                     f"{_fmt(r['rir_theta0'])} ± {_fmt(r['rir_theta0_std'])} | {_fmt(r['rir_full'])} | "
                     f"{r['acc_P_alg1_head']:.3f} | {r['acc_P_probe']:.3f} |")
    curves = rec["probe_accuracy_D_H"]
    lines += ["", "D_H linear-probe test accuracy after 1 / 5 / 50 exact-line-search GD steps (Fig. 3 analogue): "
              + "; ".join(f"{k}: " + " / ".join(f"{np.asarray(v, float)[t]:.3f}" for t in (1, 5, 50))
                          for k, v in curves.items()), ""]
    rows = {r["method"]: r for r in rec["rows"]}
    best = max(rows, key=lambda m: rows[m]["rir_theta0"])
    claims.append({"claim": "Table 3 (analogue): Ours gives the largest RIR_θ₀ for a deep net's last block",
                   "command": f"{RUN} --only deep",
                   "ours": "; ".join(f"{LABEL[m]} {_fmt(r['rir_theta0'])}" for m, r in rows.items())
                   + " (small CNN, Fashion-MNIST 0–4 vs 5–9, 1 seed)",
                   "paper": "ImageNet→Cars R18: Ours 3.467, Opt κ 1.527, R_ill Only 1.057, IMMA 0.974",
                   "decision": verdict.inconclusive(1, f"one seed; best: {LABEL[best]}")})
    return lines


def gpu_section(recs: dict) -> list[str]:
    """Table 3 at paper scale, from ``deep.py --preset gpu`` (deep_gpu_<target>.json), mean ± std over seeds."""
    lines = ["## Table 3: ImageNet ResNet-18, last two blocks immunized (deep.py --preset gpu)", "",
             "| D_H | method | RIR_θ₀ (mean ± std over seeds) | seeds | paper RIR_θ₀ |", "|---|---|---|---|---|"]
    paper = {("cars", "ours"): "3.467±0.358", ("cars", "opt_kappa"): "1.527", ("cars", "rill_only"): "1.057",
             ("country211", "ours"): "8.714±0.672", ("country211", "opt_kappa"): "1.472",
             ("country211", "rill_only"): "1.038"}
    for target, rec in recs.items():
        for m, s in rec["summary"].items():
            n = sum(r["method"] == m for r in rec["rows"])
            lines.append(f"| {target} | {LABEL[m]} | {_fmt(s['rir_theta0_mean'])} ± {_fmt(s['rir_theta0_std'])} | {n} | "
                         f"{paper.get((target, m), '–')} |")
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    args = ap.parse_args(argv)
    res = args.results / "paper4"
    claims, lines = [], ["# Paper 4 — Model Immunization from a Condition Number Perspective (CPU reproduction)", "",
                         "Generated by `python experiments/paper4/report.py` from results/paper4/ and "
                         "results/theory/immunization_linear.json; edit nothing by hand.", ""]
    lines += SETUP
    theory = args.results / "theory" / "immunization_linear.json"
    if theory.exists():
        t = read_json(theory)
        lines += ["## Theory (theory/immunization_linear.py)", "", f"**{verdict.theory(t).label}** — {t['summary']}", ""]
        lines += [f"- {n}" for n in t.get("notes", [])] + [""]
    if (res / "tabular.json").exists():
        lines += tabular_section(read_json(res / "tabular.json"), claims)
    for name, fname, paper_ref in (("sklearn digits, 90 ordered pairs (Din = 64)", "pairs_digits.jsonl", True),
                                   ("Fashion-MNIST, 90 ordered pairs", "pairs_fmnist.jsonl", False),
                                   ("Fashion-MNIST at full 784-d, a few pairs", "pairs_fmnist784.jsonl", False)):
        if (res / fname).exists():
            lines += pairs_section(name, res / fname, paper_ref, claims)
    if (res / "tabular.json").exists():
        cur = read_json(res / "curves_digits.json") if (res / "curves_digits.json").exists() else None
        lines += curves_section(read_json(res / "tabular.json"), cur, claims)
    if (res / "deep.json").exists():
        lines += deep_section(read_json(res / "deep.json"), claims)
    gpu = {t: read_json(res / f"deep_gpu_{t}.json") for t in ("cars", "country211")
           if (res / f"deep_gpu_{t}.json").exists()}
    if gpu:
        lines += gpu_section(gpu)
    lines += ["## Not done", "",
              "- **IMMA**: not reproducible. The spec gives only 'Zheng & Yeh 2024, bi-level'; its inner problem, "
              "outer loss and weights for a linear probe are not stated anywhere we can read, so any version would be "
              "our invention, not the baseline the paper ran.",
              "- **Deep nets at paper scale (Table 3: ImageNet ResNet18/ViT, Cars, Country211)**: "
              + ("run for " + ", ".join(gpu) + " (ResNet-18 only)" if gpu else "not run (needs a GPU and the data: "
                 "`python experiments/paper4/deep.py --preset gpu --imagenet-dir ... --cars-dir ... --weights ...`)")
              + "; no ViT; the App. C.3 K⁻¹ dummy layer is not implemented in the GPU preset (plain gradients).", ""]
    claims += [{"claim": "IMMA baseline", "command": "–", "ours": "not reproducible (objective not specified)",
                "paper": "Table 1 RIR 2.00; Table 2 mean RIR 1.77",
                "decision": verdict.not_testable("IMMA's objective is not specified")}]
    write_json(res / "claims.json", to_records(claims))  # registry records (geomopt.report.claims)
    lines[4:4] = paper_summary(args.results, "paper4")  # first screen, rendered from results/claims.json
    atomic_write_text(res / "REPORT.md", "\n".join(lines) + "\n")
    print(f"report: {res / 'REPORT.md'} and claims.json ({len(claims)} claims)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
