"""results/paper2/REPORT.md and results/paper2/claims.json, computed from results/ only.

Every number here is read from run files (``<results>/runs/*.jsonl``), the update-RMS record
(``<results>/update_rms.json``) and theory records (``results/theory/deva_*.json``); nothing
is typed in except the paper's own numbers.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from geomopt.optim import get_spec
from geomopt.report import verdict
from geomopt.report.checks import theory_markdown, theory_rows
from geomopt.report.claims import paper_summary, record, regime_of
from geomopt.report.protocol import fixed_row, protocol_section, recorded_rows, sweep_row
from geomopt.report.tokens import Interval, mean_interval
from geomopt.results import REPO_ROOT, atomic_write_text, load_runs, read_json, read_run, write_json

# Figure 1 of the paper (v1): tokens to val loss ≈ 3.31 — DeVA-S∞ 1.268B, SOAP 1.298B, Muon 1.357B.
PAPER_TOKENS = {"deva_sinf": 1.268e9, "soap": 1.298e9, "muon": 1.357e9}
PAPER_SAVING = {"muon": 1 - PAPER_TOKENS["deva_sinf"] / PAPER_TOKENS["muon"],   # the abstract's "6.6%"
                "soap": 1 - PAPER_TOKENS["deva_sinf"] / PAPER_TOKENS["soap"]}   # ≈ 2.3%
SETTINGS = {"shared": "one shared lr 1e-3 (the paper's protocol)", "tune": "per-method tuned lr"}
THEORY = ["deva_toy_quadratic", "deva_blockwise_smoothness"]
THEORY_PAPER = {"deva_toy_quadratic": "Figure 2: DeVA-S∞ lowest on the heterogeneous Hessian",
                "deva_blockwise_smoothness": "claim C2: variance adaptation improves blockwise smoothness"}
COMMAND = "make reproduce-paper2"


def load(results: Path) -> pd.DataFrame:
    df = load_runs(str(results / "runs" / "*.jsonl"))
    if df.empty:
        raise FileNotFoundError(f"no paper-2 runs under {results / 'runs'}; run experiments/paper2/run.py first")
    parts = df["name"].str.split("__", expand=True)
    tag = parts[1].str.rsplit("-lr", n=1, expand=True)
    lr = pd.to_numeric(tag[1], errors="coerce") if tag.shape[1] > 1 else math.nan
    return df.assign(setting=parts[0], method=tag[0], lr=lr)


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the last evaluation (val_loss, val_acc when present)."""
    evals = df.dropna(subset=["val_loss"]).sort_values("tokens")
    return evals.groupby("name").tail(1)


def lr_sweep(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Seed-0 final val loss per (method, lr) of the tuning sweep, and each method's best lr
    (the rule run.py applies before running the other seeds)."""
    last = finals(df[(df["setting"] == "tune") & (df["seed"] == 0)])
    table = last.pivot_table(index="method", columns="lr", values="val_loss")
    best = {m: float(row.idxmin()) for m, row in table.iterrows() if row.notna().any()}
    return table, best


def comparisons(df: pd.DataFrame, best: dict[str, float]) -> list[dict]:
    """Every method against Muon and against SOAP, per lr setting: tokens-to-target decisions of the
    shared module."""
    rows = []
    for setting in SETTINGS:
        g = df[df["setting"] == setting]
        if setting == "tune":
            g = g[[best.get(m) == lr for m, lr in zip(g["method"], g["lr"])]]
        curves = verdict.run_curves(g, "method")
        for base in ("muon", "soap"):
            if not {"deva_sinf", base} <= set(curves):
                continue
            for m in sorted(curves):
                if m == base:
                    continue
                paper = PAPER_SAVING[base] if m == "deva_sinf" else None
                res = verdict.tokens_to_target_verdict(curves[m], curves[base], claimed=paper)
                rows.append({"setting": setting, "method": m, "baseline": base, "res": res, "paper": paper,
                             "final": mean_interval([c.final for c in curves[m].values()])})
    return rows


def final_table(df: pd.DataFrame, setting: str, best: dict[str, float], column: str) -> dict[str, Interval]:
    g = df[df["setting"] == setting]
    if setting == "tune":
        g = g[[best.get(m) == lr for m, lr in zip(g["method"], g["lr"])]]
    last = finals(g.dropna(subset=[column]) if column in g else g.iloc[0:0])
    return {m: mean_interval(s[column].astype(float).tolist()) for m, s in last.groupby("method")}


def step_times(df: pd.DataFrame, setting: str) -> dict[str, float]:
    t = df[df["setting"] == setting].dropna(subset=["step_time"]) if "step_time" in df else df.iloc[0:0]
    return {m: float(v) for m, v in t.groupby("method")["step_time"].median().items()}


def fmt_iv(iv: Interval, digits: int = 4, pct: bool = False) -> str:
    if iv.n == 0:
        return "—"
    if iv.failed:
        return iv.fmt()
    if pct:
        return iv.fmt()
    if iv.n < 2 or not math.isfinite(iv.low):
        return f"{iv.mean:.{digits}f} (n={iv.n})"
    return f"{iv.mean:.{digits}f} ± {(iv.high - iv.low) / 2:.{digits}f} (n={iv.n})"


def describe(runs: pd.DataFrame) -> str:
    """The model and data of a set of runs, from the first run file's config."""
    if runs.empty:
        return "none"
    cfg = read_run(runs["path"].iloc[0])[0].get("config") or {}
    if cfg.get("task") == "gpt":
        return (f"{cfg['n_layer']}-layer d={cfg['n_embd']} GPT on {cfg['dataset']} "
                f"(batch {cfg['batch_size']}×{cfg['seq_len']})")
    return f"{cfg.get('model')} (width {cfg.get('width')}) on {cfg.get('dataset')}, {cfg.get('epochs')} epochs"


def fmt_saving(res) -> str:
    return verdict.fmt_interval(res.saving, 1, pct=True) if res.saving is not None else \
        f"— (target reached on {res.reached} seeds)"


def render(df, rows, sweep, best, rms, theory, summary, results) -> str:
    gpt = df[df["setting"].isin(list(SETTINGS))]
    n_gpt, n_img = gpt["name"].nunique(), df[df["setting"] == "image"]["name"].nunique()
    seeds = sorted(gpt["seed"].unique())
    tokens = int(gpt.groupby("name")["tokens"].max().max()) if n_gpt else 0
    out = ["# Paper 2 — DeVA (decoupled variance adaptation): reproduction report", "",
           "_Generated by `experiments/paper2/report.py` from `results/`; do not edit._", "",
           "The paper body is not public: DeVA-S∞ follows the authors' public code (spec §2.2; "
           "`src/geomopt/optim/deva.py`). The paper's GPT is 275M parameters on 1.4B FineWeb tokens; ours: "
           f"{describe(gpt)}, {tokens:,} tokens per run, {n_gpt} GPT runs, seeds {', '.join(map(str, seeds))}; "
           f"images: {describe(df[df['setting'] == 'image'])}, {n_img} runs.", "", *summary,
           *protocol(df, sweep, best, results), "## Details", "",
           "Matrix optimizers get the hidden matrices, AdamW the rest.", ""]
    out += theory_markdown(theory)
    for setting, title in SETTINGS.items():
        sel = [r for r in rows if r["setting"] == setting]
        if not sel:
            continue
        times = step_times(df, setting)
        out += ["", f"## GPT tokens to target — {title}", "",
                "| method | vs | mean target loss | saving | reached | final val loss | "
                "Δ final vs baseline (paired) | paper | outcome |", "|---|---|---|---|---|---|---|---|---|"]
        for r in sel:
            paper = f"{100 * r['paper']:.1f}%" if r["paper"] is not None else "—"
            res = r["res"]
            out.append(f"| {r['method']} | {r['baseline']} | {res.target:.4f} | {fmt_saving(res)} | "
                       f"{res.reached} | {fmt_iv(r['final'])} | {verdict.fmt_interval(res.delta_final.interval)} | "
                       f"{paper} | {res.decision.label} |")
        fin = final_table(df, setting, best, "val_loss")
        out += ["", "| method | final val loss (mean ± 95% CI half-width) | median step time (s) |", "|---|---|---|"]
        for m, iv in sorted(fin.items(), key=lambda kv: kv[1].mean):
            out.append(f"| {m} | {fmt_iv(iv)} | {times.get(m, math.nan):.3f} |")
    if not sweep.empty:
        out += ["", "## Learning-rate sweep (seed 0, final val loss; ★ = chosen)", "",
                "| method | " + " | ".join(f"lr {lr:g}" for lr in sweep.columns) + " |",
                "|---|" + "---|" * len(sweep.columns)]
        for m, row in sweep.iterrows():
            cells = [("—" if not math.isfinite(v) else f"{v:.4f}" + (" ★" if best.get(m) == lr else ""))
                     for lr, v in row.items()]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        edge = [m for m, row in sweep.iterrows() if best.get(m) in (row.dropna().index.min(), row.dropna().index.max())
                and row.notna().sum() > 1]
        out.append("")
        if edge:
            out.append(f"Best lr at the edge of its grid (the optimum may lie outside): {', '.join(edge)}.")
        out.append("The best lr is picked on seed 0's final val loss (the same validation tokens the report "
                   "uses), so seed 0 of the tuned runs is selection-biased; seeds 1–2 are fresh.")
    if rms:
        out += ["", "## Update size under the shared lr", "",
                f"RMS(ΔW) / η over the hidden matrices, first {rms['steps']} steps of seed 0 (median after the first "
                "step); η is the paper's lr 1e-3 on the schedule. DeVA-S∞ is built for 0.2·mean(Γ) (Moonlight "
                "scaling), the code's Muon for 1: one shared lr gives the methods different step sizes.", "",
                "| method | RMS(ΔW)/η |", "|---|---|"]
        for m, r in rms["methods"].items():
            out.append(f"| {m} | {r['rms_per_paper_lr_median']:.3f} |")
    acc = final_table(df, "image", best, "val_acc")
    if acc:
        loss = final_table(df, "image", best, "val_loss")
        out += ["", "## Image classification (final test accuracy)", "",
                "| method | test accuracy (mean ± 95% CI half-width) | test loss |", "|---|---|---|"]
        for m, iv in sorted(acc.items(), key=lambda kv: -kv[1].mean):
            out.append(f"| {m} | {fmt_iv(iv)} | {fmt_iv(loss.get(m, Interval(math.nan, math.nan, math.nan, 0)))} |")
    scale = []
    if n_gpt:
        cfg = read_run(gpt["path"].iloc[0])[0].get("config") or {}
        steps = tokens // (cfg.get("batch_size", 1) * cfg.get("seq_len", 1))
        body = 12 * cfg.get("n_layer", 0) * cfg.get("n_embd", 0) ** 2  # transformer-block parameters
        scale = [f"- **Scale:** each GPT run here is {steps} optimizer steps ({tokens:,} tokens) of a model with "
                 f"{body / 1e6:.2g}M block parameters; the paper's Muon reaches its target at "
                 f"{PAPER_TOKENS['muon'] / 1e9:.3g}B tokens with a 275M model, so our comparison sits much "
                 "earlier in training."]
    out += ["", "## Reading", "", *reading(rows, acc, rms, theory, df), *scale, ""]
    return "\n".join(out)


def protocol(df: pd.DataFrame, sweep: pd.DataFrame, best: dict[str, float], res: Path) -> list[str]:
    """Shared setting and images: fixed values; tuned setting: the seed-0 lr grid of the earlier protocol."""
    rows = []
    for setting, tag in (("shared", "shared lr"), ("image", "images")):
        for m, g in df[df["setting"] == setting].groupby("method", sort=False):
            cfg = read_run(g["path"].iloc[0])[0]["config"]
            hp = {"lr": cfg["optim"].get("lr")}
            if get_spec(cfg["optimizer"]).matrix:
                hp["AdamW-half lr"] = cfg["adamw"].get("lr")
            rows.append(fixed_row(f"{m} ({tag})", hp, "methods.toml"))
    for m, row in sweep.iterrows():
        half = {"AdamW-half lr": "preset's 3e-3 (not tuned)"} if get_spec(m).matrix else None
        rows.append(sweep_row(f"{m} (tuned lr)", "lr", row.dropna().to_dict(), best[m],
                              "final val loss, seed 0, report split", half))
    return protocol_section(recorded_rows(res) + rows, [
        "- The tuned setting predates the tuning protocol (issue 12): one 3-point lr grid ×3.3 apart per method, "
        "the AdamW half's lr fixed, selected on seed 0 with the same validation windows the comparisons read "
        "(seed 0 of the tuned rows is selection-biased; seeds 1–2 are fresh); an edge winner was not extended.",
        "- Seeds pair runs with the same init and data order."])


def image_comparison(df: pd.DataFrame) -> tuple | None:
    """DeVA-S∞ against the baseline with the best mean final test accuracy, paired by seed."""
    acc = {m: {s: c.final for s, c in cs.items()}
           for m, cs in verdict.run_curves(df[df["setting"] == "image"], "method", "val_acc").items()}
    if "deva_sinf" not in acc or len(acc) < 2:
        return None
    rivals = {m: v for m, v in acc.items() if m != "deva_sinf"}
    best_m = max(rivals, key=lambda m: mean_interval(list(rivals[m].values())).mean)
    return (best_m, *verdict.compare(acc["deva_sinf"], rivals[best_m], better="higher"))


def regime(df: pd.DataFrame, setting: str) -> dict:
    meta = read_run(df[df["setting"] == setting]["path"].iloc[0])[0]
    return regime_of(meta["config"], meta.get("total_steps"))


def claims(df: pd.DataFrame, rows: list[dict], acc: dict[str, Interval], theory: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if r["method"] != "deva_sinf":
            continue
        res = r["res"]
        ours = (f"saving {fmt_saving(res)}, reached {res.reached}, Δ final loss "
                f"{verdict.fmt_interval(res.delta_final.interval)}")
        out.append(record("paper2", f"deva_sinf-vs-{r['baseline']}-{r['setting']}",
                          f"DeVA-S∞ saves tokens over {r['baseline']} (GPT, {SETTINGS[r['setting']]})",
                          f"{100 * r['paper']:.1f}% (NanoGPT 275M, FineWeb)", "Figure 1 / abstract", ours,
                          res.decision, regime(df, r["setting"]), "results/paper2/REPORT.md#protocol", COMMAND,
                          interval=res.saving if res.saving is not None else res.delta_final.interval))
    img = image_comparison(df)
    if img:
        best_m, p, v = img
        out.append(record("paper2", "deva_sinf-images", "DeVA-S∞ beats Muon/SGD/AdamW on image classification "
                          f"(small ResNet; tested against the best baseline, {best_m})",
                          "consistently better (setup and numbers not public)", "paper text",
                          "; ".join(f"{m} {fmt_iv(iv, 4)}" for m, iv in acc.items())
                          + f"; DeVA-S∞ − {best_m} paired Δ acc {verdict.fmt_interval(p.interval)}",
                          v, regime(df, "image"), "results/paper2/REPORT.md#protocol", COMMAND,
                          interval=p.interval))
    for t in theory:
        out.append(record("paper2", f"theory:{t['check']}", t["claim"], THEORY_PAPER[t["check"]], "paper / spec",
                          t["summary"], verdict.theory(t), {"model": "numeric check", "data": "synthetic"},
                          f"theory/{t['check']}.py", f"python theory/{t['check']}.py"))
    return out


def reading(rows: list[dict], acc: dict[str, Interval], rms: dict, theory: list[dict], df) -> list[str]:
    """A plain reading of the outcome, computed from the same numbers."""
    lines = []
    for r in rows:
        if r["method"] == "deva_sinf":
            res = r["res"]
            lines.append(f"- **DeVA-S∞ vs {r['baseline']}, {SETTINGS[r['setting']]}:** {res.decision.label} "
                         f"({res.decision.why}; paper {100 * r['paper']:.1f}% at 275M / 1.4B tokens).")
    if rms and {"deva_sinf", "muon"} <= set(rms["methods"]):
        d, m = (rms["methods"][k]["rms_per_paper_lr_median"] for k in ("deva_sinf", "muon"))
        lines.append(f"- **Step size under one lr:** DeVA-S∞'s matrix updates are {d / m:.2f}× Muon's in RMS "
                     f"({d:.3f} vs {m:.3f} per unit lr), so the shared-lr comparison mixes the method with its "
                     "step size; the tuned-lr rows separate them.")
    img = image_comparison(df)
    if img:
        lines.append(f"- **Images:** DeVA-S∞ vs the best baseline {img[0]}: {img[2].label} ({img[2].why}).")
    return lines or ["- No comparisons could be computed from the runs present."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                    help="results root holding paper2/ and theory/ (quick mode: results/quick)")
    args = ap.parse_args(argv)
    args.results = args.results / "paper2"
    try:
        df = load(args.results)
    except (FileNotFoundError, ValueError) as e:
        print(f"paper2 report: {e}", file=sys.stderr)
        return 2
    sweep, best = lr_sweep(df)
    rows = comparisons(df, best)
    rms_path = args.results / "update_rms.json"
    rms = read_json(rms_path) if rms_path.exists() else {}
    theory = theory_rows(args.results.parent / "theory", THEORY)
    acc = final_table(df, "image", best, "val_acc")
    write_json(args.results / "claims.json", claims(df, rows, acc, theory))
    summary = paper_summary(args.results.parent, "paper2")  # rebuilds results/claims.json, renders paper 2's rows
    atomic_write_text(args.results / "REPORT.md", render(df, rows, sweep, best, rms, theory, summary,
                                                               args.results))
    print(f"paper2 report: {args.results / 'REPORT.md'} ({len(rows)} comparisons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
