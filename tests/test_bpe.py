"""The Shakespeare BPE task: tokenizer + shards built offline from a small text, read by the
FineWeb shard reader, deterministic, cached by build key, atomic; a short train run on them."""

from pathlib import Path

import numpy as np
import pytest

from geomopt.data import DataMissing, bpe, text
from geomopt.data.text import load_text, read_shard
from geomopt.report import fig_lm
from geomopt.results import read_run
from geomopt.train import load_config, run

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")
GPT_BPE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "gpt_bpe.toml")
WORDS = ("thou", "art", "the", "king", "of", "Denmark", "and", "I", "shall", "not", "be", "moved", "rare",
         "whither", "Ophelia", "sweet", "prince", "good", "night", "'tis", "nobler", "in", "mind", "to", "suffer")


def small_corpus(n_words: int = 6000, seed: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) + rng.choice([",", ".", "!", "?"])
             for _ in range(n_words // 7)]
    cut = int(0.8 * len(lines))
    return "\n".join(lines[:cut]), "\n".join(lines[cut:]) + "\nUnseen wörds: Æthelred, 42.\n"


def test_build_writes_fineweb_format_shards_that_decode_back_to_the_text(tmp_path):
    train_text, val_text = small_corpus()
    d = bpe.build(train_text, val_text, tmp_path / "build", vocab_size=400)
    train_path, val_path = bpe.shard_paths(d)
    assert np.fromfile(train_path, dtype=np.int32, count=3).tolist()[:2] == [text.SHARD_MAGIC, text.SHARD_VERSION]
    tok = bpe.load_tokenizer(d)
    assert tok.decode(read_shard(train_path).tolist()) == train_text
    assert tok.decode(read_shard(val_path).tolist()) == val_text  # unseen characters: bytes, no unknown token
    data = load_text("shakespeare_bpe", str(d))
    assert data.vocab_size == tok.get_vocab_size() == bpe.build_info(d)["vocab_size_built"] <= 400
    assert data.num_tokens("train") == bpe.build_info(d)["train_tokens"] < len(train_text) / 2  # merges happened
    assert max(int(a.max()) for a in data.train + data.val) < data.vocab_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]  # no temporary directory left


def test_same_text_gives_byte_identical_files(tmp_path):
    train_text, val_text = small_corpus(seed=1)
    a = bpe.build(train_text, val_text, tmp_path / "a", vocab_size=400)
    b = bpe.build(train_text, val_text, tmp_path / "b", vocab_size=400)
    for name in ("tokenizer.json", "build.json", *(p.name for p in bpe.shard_paths(a))):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = bpe.build(*small_corpus(seed=2), tmp_path / "c", vocab_size=400)
    assert (c / "tokenizer.json").read_bytes() != (a / "tokenizer.json").read_bytes()


def test_tokenizer_is_fitted_on_the_train_text_only(tmp_path):
    train_text, _ = small_corpus()
    d = bpe.build(train_text, "Zyzzyva Zyzzyva Zyzzyva " * 200, tmp_path / "b", vocab_size=400)
    vocab = bpe.load_tokenizer(d).get_vocab()
    assert not any("Zyzz" in t for t in vocab) and any("Denmark" in t for t in vocab)


def test_cache_builds_once_rebuilds_on_a_new_key_and_removes_the_old(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "shakespeare_split", lambda val_fraction: small_corpus())
    monkeypatch.setattr(bpe, "VOCAB_SIZE", 400)
    with pytest.raises(DataMissing, match="make data"):
        bpe.shakespeare_bpe_dir(tmp_path, build_missing=False)
    first = bpe.shakespeare_bpe_dir(tmp_path)
    stamp = (first / "build.json").stat().st_mtime_ns
    assert bpe.shakespeare_bpe_dir(tmp_path) == first and (first / "build.json").stat().st_mtime_ns == stamp
    monkeypatch.setattr(bpe, "BUILDER_VERSION", bpe.BUILDER_VERSION + 1)  # a changed builder
    second = bpe.shakespeare_bpe_dir(tmp_path)
    assert second != first and bpe.is_built(second) and not first.exists()


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(tok, s):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(bpe, "encode", broken)
    with pytest.raises(RuntimeError):
        bpe.build(*small_corpus(), tmp_path / "x", vocab_size=300)
    assert list(tmp_path.iterdir()) == []


def test_missing_build_names_the_directory(tmp_path):
    with pytest.raises(DataMissing, match=f"shakespeare_bpe_train.*{tmp_path}"):
        load_text("shakespeare_bpe", str(tmp_path))


def test_short_gpt_run_on_bpe_shards(tmp_path):
    d = bpe.build(*small_corpus(), tmp_path / "data", vocab_size=400)
    cfg = load_config(SMOKE, ["dataset=shakespeare_bpe", f"data_dir={d}", f"out={tmp_path}/m.jsonl",
                              f"checkpoint_dir={tmp_path}/ck", "steps=12", "eval_tokens=512", "eval_every=0",
                              "progress=false"])
    meta, rows = read_run(run(cfg))
    losses = rows.dropna(subset=["val_loss"])["val_loss"].tolist()
    assert meta["status"] == "completed" and len(losses) == 2
    assert abs(losses[0] - np.log(bpe.build_info(d)["vocab_size_built"])) < 0.5  # starts near uniform
    assert losses[1] < losses[0] - 0.3
    fig_lm.baseline_curve({"m.jsonl": (meta, rows)}, tmp_path / "fig" / "curve")  # the baseline figure draws
    assert (tmp_path / "fig" / "curve.png").stat().st_size > 0


def test_cpu_preset_is_the_bpe_task_at_two_million_tokens_or_more():
    cfg = load_config(GPT_BPE)
    assert cfg.dataset == "shakespeare_bpe" and cfg.schedule == "warmdown" and cfg.total_tokens >= 2_000_000
    assert 4 * cfg.eval_tokens <= 292_331 * 0.9  # report + selection parts of the val stream stay disjoint


def test_make_data_builds_the_bpe_shards_and_reports_them(tmp_path, monkeypatch, capsys):
    from geomopt.data import catalog

    monkeypatch.setattr(text, "shakespeare_split", lambda val_fraction: small_corpus())
    monkeypatch.setattr(bpe, "VOCAB_SIZE", 400)
    monkeypatch.setattr(bpe, "DEFAULT_ROOT", tmp_path / "cache")
    monkeypatch.setattr(catalog, "install_fashion_mnist", lambda: "not attempted in this test")
    assert catalog.main([]) == 0 and "shakespeare_bpe MISSING" in capsys.readouterr().out
    assert catalog.main(["--install"]) == 0
    out = capsys.readouterr().out
    assert "shakespeare_bpe found" in out and str(tmp_path / "cache") in out and "-token BPE" in out
