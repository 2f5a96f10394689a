"""The one verdict module: every paper's report decides its verdicts here, by one rule each.

Vocabulary (fixed; ``RULES`` holds the one rule text of each word, printed beside every verdict):
``reproduced``, ``contradicted``, ``inconclusive (n = …)``, ``not testable here (why)``.

Statistics
- **Paired by seed.** Two arms run with the same seed share the model init and the data order, so
  a comparison is made on per-seed differences d_s = method_s − baseline_s (seeds present in one
  arm only are not paired and are counted apart, never silently).
- **Interval:** Student-t 95% on the paired differences (``INTERVAL_METHOD``); never a t-interval
  on a ratio: a token saving is 1 − exp(mean log(T_method/T_baseline)), its interval the t-interval
  of the paired log-differences mapped through the same monotone function, so it can never
  exceed a 100% saving.
- **Failures** (a diverged run, a NaN or infinite value) rank last in every statistic and are
  never dropped (``FAILURE_RULE``): a failed method run against a finished baseline run is a pair
  with difference +∞ in the unfavourable direction; a failed baseline run against a finished
  method run is −∞ (favourable to the method); both failed is a tie (0). An infinite difference
  makes the mean and the interval bound on its side infinite; the other bound is the t-bound of
  the finite differences (−∞/+∞ with fewer than two). A failure can only widen the interval
  towards itself, so it can never make a claim look reproduced.
- **Significance** (``SIGNIFICANCE_RULE``): the interval lies wholly on the side the paper claims
  → reproduced; wholly on the other side → contradicted; otherwise (it covers "no effect", or
  fewer than two pairs) → inconclusive (n = pairs).
- **Tokens to target** (``TOKENS_RULE``): the target of seed s is the final val loss of the
  baseline's seed-s run (paired, so a finished baseline always reaches it); T = the first
  (log-interpolated) token count reaching it (``report.tokens.tokens_to_target``), ∞ if never
  reached or the run failed. The saving is reported only when every paired seed of both arms
  reaches the target; otherwise the verdict is the paired Δ-final-loss verdict.
- **Claimed size** (``SIZE_RULE``): a paper that states its saving ("~2% of tokens") claims that size,
  not merely a sign: a saving interval wholly below half the stated saving excludes the claim as
  stated → contradicted, even when it lies above 0 (a 0.002% saving does not reproduce "~2%"). A saving
  larger than stated stays reproduced: it is on the claimed side and does not exclude the claim's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from geomopt.report.tokens import Interval, tokens_to_target

LEVEL = 0.95
REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = ("reproduced", "contradicted", "inconclusive",
                                                        "not testable here")
SIZE_SHARE = 0.5  # a claimed token saving's size is excluded when the interval lies wholly below this share of it
RULES = {
    REPRODUCED: "the 95% interval of the paired effect (or an exact, seed-free measurement) lies wholly on "
                "the side the paper claims (for a claimed token saving: and not wholly below half of it)",
    CONTRADICTED: "the 95% interval of the paired effect (or an exact, seed-free measurement) lies wholly on "
                  "the opposite side of the paper's claim, or wholly below half of a claimed token saving "
                  "(the claimed size is excluded)",
    INCONCLUSIVE: "the 95% interval covers no effect, or fewer than two paired seeds (n) exist to form one",
    NOT_TESTABLE: "the claim's method, data or measurement cannot be run here; the reason is given",
}
VOCABULARY = tuple(RULES)
INTERVAL_METHOD = "Student-t 95% interval on per-seed paired differences (method − baseline, same seed)"
FAILURE_RULE = ("a diverged / non-finite run ranks last and is never dropped: failed method vs finished "
                "baseline = +∞ against the method, failed baseline vs finished method = −∞ (for the method), "
                "both failed = tie (0); an infinite difference opens its side of the interval")
SIGNIFICANCE_RULE = ("interval wholly on the paper's side → reproduced; wholly on the other side → "
                     "contradicted; else inconclusive (n = pairs)")
SIZE_RULE = ("a stated token saving c is a claim of that size: a saving interval wholly below c/2 → contradicted "
             "(the claimed size is excluded), even above 0")
TOKENS_RULE = ("target of seed s = the final val loss of the baseline's seed-s run; T interpolated in log-loss; "
               "saving = 1 − exp(mean_s log(T_method,s / T_baseline,s)), interval from the t-interval of the "
               "log-differences; reported only when every paired seed of both arms reaches the target, "
               "else the verdict is the paired Δ final loss")


@dataclass(frozen=True)
class Verdict:
    """A word of the vocabulary, the number of pairs behind it and the reason in one line."""

    word: str
    n: int | None = None
    why: str = ""

    def __post_init__(self):
        if self.word not in RULES:
            raise ValueError(f"verdict {self.word!r} is not in the vocabulary; use one of: {', '.join(RULES)}")
        if self.word == NOT_TESTABLE and not self.why:
            raise ValueError("a 'not testable here' verdict needs its reason (why)")

    @property
    def label(self) -> str:
        if self.word == INCONCLUSIVE:
            return f"{INCONCLUSIVE} (n = {self.n if self.n is not None else 0})"
        if self.word == NOT_TESTABLE:
            return f"{NOT_TESTABLE} ({self.why})"
        return self.word

    @property
    def rule(self) -> str:
        return RULES[self.word]


def not_testable(why: str) -> Verdict:
    return Verdict(NOT_TESTABLE, None, why)


def inconclusive(n: int, why: str) -> Verdict:
    """Too few independent repeats to form an interval (e.g. a single-seed sweep's argmax)."""
    return Verdict(INCONCLUSIVE, n, why)


def exact(holds: bool, why: str = "") -> Verdict:
    """A seed-free (deterministic) measurement: the claimed inequality holds or it does not."""
    return Verdict(REPRODUCED if holds else CONTRADICTED, 1, why)


PART_WORDS = ("holds", "fails", "not observed")  # a measurement's per-claim words; only "holds" holds


def measured_parts(record: Mapping) -> dict:
    """The per-claim parts of a measurement record (``measured.verdicts``: {claim: {"verdict": word}})."""
    parts = (record.get("measured") or {}).get("verdicts") or {}
    return {k: v for k, v in parts.items() if isinstance(v, Mapping) and v.get("verdict") in PART_WORDS}


def theory(record: Mapping | None) -> Verdict:
    """THE mapping of a theory check (results/theory/<check>.json, PASS/FAIL) into the vocabulary:
    a check is an exact numeric test of the quoted claim, so PASS → reproduced, FAIL → contradicted;
    a record from the quick mode (meta.quick, or ``quick`` in a report's theory row) is not the claim's test → inconclusive (quick mode); none →
    not testable here (not run)."""
    if record is None:
        return not_testable("theory check not run")
    if record.get("meta", {}).get("quick") or record.get("quick"):
        return Verdict(INCONCLUSIVE, 0, "quick-mode record")
    if record["verdict"] not in ("PASS", "FAIL"):  # e.g. "—" in a report's row of a missing record
        return not_testable(f"theory check not run ({record['verdict']})")
    parts = measured_parts(record)
    if record["verdict"] == "PASS" and parts:  # a measurement: PASS = valid, the claims are its parts
        held = {k: v["verdict"] == "holds" for k, v in parts.items()}
        return exact(all(held.values()), "measured: " + ", ".join(f"{k} {parts[k]['verdict']}" for k in held))
    return exact(record["verdict"] == "PASS", f"theory check {record['verdict']}")


# ------------------------------------------------------------------ paired statistics
@dataclass(frozen=True)
class Paired:
    """Per-seed paired differences (method − baseline, failure rule applied) and their interval."""

    seeds: tuple
    diffs: tuple
    interval: Interval
    failures: tuple = (0, 0)  # (failed method runs, failed baseline runs) among the pairs
    unpaired: int = 0  # runs whose seed the other arm lacks (not in the statistic; reported)

    @property
    def n(self) -> int:
        return len(self.diffs)


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and Student-t interval of ``values`` with the failure rule's infinities (see module doc)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    pos, neg = bool(np.any(v == math.inf)), bool(np.any(v == -math.inf))
    fin = v[np.isfinite(v)]
    if fin.size >= 2:
        half = float(stats.t.ppf(0.5 + level / 2, fin.size - 1) * fin.std(ddof=1) / math.sqrt(fin.size))
        low, high = float(fin.mean()) - half, float(fin.mean()) + half
    else:
        low, high = -math.inf, math.inf
    if pos and neg:
        return Interval(math.nan, -math.inf, math.inf, int(v.size))
    if pos:
        return Interval(math.inf, low, math.inf, int(v.size))
    if neg:
        return Interval(-math.inf, -math.inf, high, int(v.size))
    if v.size < 2:
        return Interval(float(v.mean()), math.nan, math.nan, 1)
    return Interval(float(v.mean()), low, high, int(v.size))


def _failed(x) -> bool:
    return x is None or not math.isfinite(float(x))


def paired(method: Mapping[int, float], baseline: Mapping[int, float], better: str = "lower",
           level: float = LEVEL) -> Paired:
    """Paired differences of per-seed values; a non-finite value is a failed run (``FAILURE_RULE``).
    ``better``: "lower" (losses, tokens) or "higher" (accuracy): which values favour a run."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better={better!r}; use 'lower' or 'higher'")
    worse = math.inf if better == "lower" else -math.inf  # the difference of a failed method run
    seeds = tuple(sorted(set(method) & set(baseline)))
    diffs, fm, fb = [], 0, 0
    for s in seeds:
        m_bad, b_bad = _failed(method[s]), _failed(baseline[s])
        fm, fb = fm + m_bad, fb + b_bad
        diffs.append(0.0 if m_bad and b_bad else worse if m_bad else -worse if b_bad
                     else float(method[s]) - float(baseline[s]))
    unpaired = len(set(method) ^ set(baseline))
    return Paired(seeds, tuple(diffs), t_interval(diffs, level), (fm, fb), unpaired)


def decide(iv: Interval, better: str = "lower", why: str = "") -> Verdict:
    """``SIGNIFICANCE_RULE`` on the interval of a difference method − baseline (``better`` = the
    sign the paper claims: "lower" = the method's value is lower)."""
    n = iv.n
    if n < 2 or math.isnan(iv.low) or math.isnan(iv.high):
        return Verdict(INCONCLUSIVE, n, why or "fewer than two pairs")
    favour, against = (iv.high < 0, iv.low > 0) if better == "lower" else (iv.low > 0, iv.high < 0)
    if favour:
        return Verdict(REPRODUCED, n, why)
    if against:
        return Verdict(CONTRADICTED, n, why)
    return Verdict(INCONCLUSIVE, n, why or "interval covers 0")


def compare(method: Mapping[int, float], baseline: Mapping[int, float], better: str = "lower") -> tuple[Paired, Verdict]:
    """Paired comparison and its verdict, the one call a report makes for 'method beats baseline'."""
    p = paired(method, baseline, better)
    return p, decide(p.interval, better, why_paired(p, better))


def why_paired(p: Paired, better: str) -> str:
    fm, fb = p.failures
    bits = [f"Δ {fmt_interval(p.interval)}"]
    if fm or fb:
        bits.append(f"failed runs: method {fm}, baseline {fb}")
    if p.unpaired:
        bits.append(f"{p.unpaired} unpaired run(s)")
    return "; ".join(bits)


def fmt_interval(iv: Interval, digits: int = 4, pct: bool = False) -> str:
    """mean [low, high] (n = k), or mean (n = 1); ±inf printed as ∞."""
    if iv.n == 0:
        return "— (n = 0)"
    k, unit = (100.0, "%") if pct else (1.0, "")

    def f(x):
        return "+∞" if x == math.inf else "−∞" if x == -math.inf else "nan" if math.isnan(x) else \
            f"{k * x:+.{digits}f}{unit}"
    if math.isnan(iv.low):
        return f"{f(iv.mean)} (n = {iv.n})"
    return f"{f(iv.mean)} [{f(iv.low)}, {f(iv.high)}] (n = {iv.n})"


# ------------------------------------------------------------------ tokens to target
@dataclass(frozen=True)
class Curve:
    """One run's evaluations: tokens and val losses; ``failed`` for a diverged / non-finite run."""

    tokens: Sequence[float]
    losses: Sequence[float]
    failed: bool = False

    @property
    def final(self) -> float:
        if self.failed or not len(self.losses) or not math.isfinite(float(self.losses[-1])):
            return math.inf
        return float(self.losses[-1])


@dataclass(frozen=True)
class TokensResult:
    target: float  # mean over seeds of the per-seed targets
    T_method: dict
    T_baseline: dict
    saving: Interval | None  # None unless every paired seed of both arms reached the target
    delta_final: Paired
    decision: Verdict
    reached: str = ""  # "k/n" method seeds reaching the target


def saving_interval(T_method: Mapping[int, float], T_baseline: Mapping[int, float], level: float = LEVEL) -> Interval:
    """1 − exp(mean log-ratio) with the t-interval of the paired log-differences mapped through the same
    decreasing function: the bounds always lie below 1 (no saving beyond 100%) and the point estimate
    between the extreme per-seed savings."""
    seeds = sorted(set(T_method) & set(T_baseline))
    logs = [math.log(T_method[s]) - math.log(T_baseline[s]) for s in seeds]
    iv = t_interval(logs, level)
    if iv.n == 0:
        return iv
    low = 1 - math.exp(iv.high) if not math.isnan(iv.high) else math.nan
    high = 1 - math.exp(iv.low) if not math.isnan(iv.low) else math.nan
    return Interval(1 - math.exp(iv.mean), low, high, iv.n)


def tokens_to_target_verdict(method: Mapping[int, Curve], baseline: Mapping[int, Curve],
                             claimed: float | None = None) -> TokensResult:
    """The token-saving verdict of ``TOKENS_RULE`` (claimed: the paper's saving, for the why text).
    The target of seed s is the final val loss of the baseline's seed-s run."""
    targets = {s: c.final for s, c in baseline.items()}

    def T(c: Curve, target: float) -> float:
        return math.inf if c.failed or not math.isfinite(target) else tokens_to_target(c.tokens, c.losses, target)
    Tm = {s: T(c, targets[s]) for s, c in method.items() if s in targets}
    Tb = {s: T(c, targets[s]) for s, c in baseline.items()}
    delta = paired({s: c.final for s, c in method.items()}, {s: c.final for s, c in baseline.items()}, "lower")
    seeds = delta.seeds
    reached_m = sum(math.isfinite(Tm[s]) for s in seeds)
    reached_b = sum(math.isfinite(Tb[s]) for s in seeds)
    reached = f"{reached_m}/{len(seeds)}"
    fin = [targets[s] for s in seeds if math.isfinite(targets[s])]
    target = float(np.mean(fin)) if fin else math.nan
    if seeds and reached_m == reached_b == len(seeds):
        sav = saving_interval({s: Tm[s] for s in seeds}, {s: Tb[s] for s in seeds})
        why = f"saving {fmt_interval(sav, 1, pct=True)}, every seed reached the target"
        if claimed is not None and not math.isnan(sav.low):
            why += (f"; paper's {100 * claimed:.1f}% " +
                    ("inside" if sav.low <= claimed <= sav.high else "outside") + " the interval")
        verdict = decide(sav, "higher", why)  # the paper claims a saving > 0 ...
        if claimed is not None and claimed > 0 and sav.n >= 2 and sav.high < SIZE_SHARE * claimed:
            verdict = Verdict(CONTRADICTED, sav.n, why + f", and wholly below half of it ({SIZE_RULE})")  # ... of its size
        return TokensResult(target, Tm, Tb, sav, delta, verdict, reached)
    why = (f"target not reached by the method on {len(seeds) - reached_m}/{len(seeds)} seeds"
           + (f" (baseline failed on {len(seeds) - reached_b})" if reached_b < len(seeds) else "")
           + f": Δ final loss {fmt_interval(delta.interval)}")
    if any(delta.failures):
        why += f"; failed runs: method {delta.failures[0]}, baseline {delta.failures[1]}"
    return TokensResult(target, Tm, Tb, None, delta, decide(delta.interval, "lower", why), reached)


def run_curves(evals, key: str, column: str = "val_loss") -> dict:
    """{key value: {seed: Curve}} from a ``load_runs`` frame (columns key, seed, tokens, ``column``,
    path); a run whose file header says ``nonfinite`` (diverged) is a failed Curve."""
    from geomopt.results import read_run

    status = {p: read_run(p)[0].get("status") for p in evals["path"].unique()}
    out: dict = {}
    ev = evals.dropna(subset=[column]).sort_values("tokens")
    for (k, seed, path), g in ev.groupby([key, "seed", "path"]):
        out.setdefault(k, {})[int(seed)] = Curve(g["tokens"].tolist(), g[column].tolist(),
                                                 status[path] == "nonfinite")
    return out


def legend(words: Sequence[str] | None = None) -> list[str]:
    """Markdown lines: each verdict word used, with its rule (the constant of ``RULES``)."""
    used = [w for w in VOCABULARY if words is None or w in words]
    return [f"- **{w}**: {RULES[w]}." for w in used]
