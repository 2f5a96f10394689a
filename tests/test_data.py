"""Data readers on small files written here in the on-disk formats, and the offline Shakespeare default."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from geomopt.data import DataMissing, catalog
from geomopt.data.images import augment, draw_augment, load_cifar10, load_fashion_mnist, read_idx, write_idx
from geomopt.data.text import (load_fineweb, load_shakespeare, read_shard, strip_markdown, window_counts, windows,
                               write_shard)


def test_shard_reader_reads_header_count_and_uint16_tokens(tmp_path):
    rng = np.random.default_rng(0)
    a, b, v = (rng.integers(0, 50257, n).astype(np.uint16) for n in (1000, 700, 300))
    write_shard(tmp_path / "fineweb_train_000001.bin", a)
    write_shard(tmp_path / "fineweb_train_000002.bin", b)
    write_shard(tmp_path / "fineweb_val_000000.bin", v)
    raw = np.fromfile(tmp_path / "fineweb_train_000001.bin", dtype=np.int32, count=256)
    assert raw[:3].tolist() == [20240520, 1, 1000]  # the format the test relies on
    data = load_fineweb(str(tmp_path))
    assert [len(x) for x in data.train] == [1000, 700] and np.array_equal(data.val[0], v)
    assert np.array_equal(data.train[1], b) and data.vocab_size == 50304
    # window index 1000 - 16 + 1 = 985 is the first window of the second shard
    got = windows(data.train, np.array([0, 984, 985, 985 + 684]), 16)
    assert np.array_equal(got[0], a[:16]) and np.array_equal(got[1], a[984:1000])
    assert np.array_equal(got[2], b[:16]) and np.array_equal(got[3], b[684:700])
    assert window_counts(data.train, 16).tolist() == [985, 685]


def test_shard_reader_rejects_bad_magic_and_truncation(tmp_path):
    header = np.zeros(256, dtype=np.int32)
    header[:3] = (1234, 1, 4)
    (tmp_path / "bad.bin").write_bytes(header.tobytes() + np.zeros(4, np.uint16).tobytes())
    with pytest.raises(ValueError, match="magic"):
        read_shard(tmp_path / "bad.bin")
    header[0] = 20240520
    (tmp_path / "short.bin").write_bytes(header.tobytes() + np.zeros(3, np.uint16).tobytes())
    with pytest.raises(ValueError, match="4 tokens"):
        read_shard(tmp_path / "short.bin")


def test_fineweb_missing_names_the_path_and_how_to_get_it(tmp_path):
    with pytest.raises(DataMissing) as e:
        load_fineweb(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "GEOMOPT_FINEWEB" in msg and "\n" not in msg


def _cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
    return data, labels


def test_cifar_reader_on_small_pickle_batches(tmp_path):
    parts = [_cifar_batch(tmp_path / f"data_batch_{i}", 4, i) for i in range(1, 6)]
    test = _cifar_batch(tmp_path / "test_batch", 3, 9)
    d = load_cifar10(str(tmp_path))
    assert d.train.x.shape == (20, 3, 32, 32) and d.test.x.shape == (3, 3, 32, 32)
    # row-major 3072 = 3 channels of 32 x 32 (the CIFAR layout)
    assert torch.equal(d.train.x[5, 1].flatten(), torch.from_numpy(parts[1][0][1, 1024:2048]))
    assert d.train.y.tolist() == sum((p[1] for p in parts), []) and d.test.y.tolist() == test[1]
    assert d.mean.shape == (3,) and d.num_classes == 10
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataMissing, match="test_batch.*GEOMOPT_CIFAR10"):
        load_cifar10(str(tmp_path))


def test_idx_reader_on_hand_written_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">BBBBiii", 0, 0, 8, 3, 2, 3, 4) + images.tobytes()  # magic 0x00000803
    (tmp_path / "plain-idx3").write_bytes(raw)
    assert np.array_equal(read_idx(tmp_path / "plain-idx3"), images)
    with gzip.open(tmp_path / "z.gz", "wb") as f:
        f.write(struct.pack(">BBBBi", 0, 0, 8, 1, 3) + bytes([7, 8, 9]))
    assert read_idx(tmp_path / "z.gz").tolist() == [7, 8, 9]
    (tmp_path / "bad").write_bytes(struct.pack(">BBBBi", 0, 0, 8, 1, 5) + bytes([1]))
    with pytest.raises(ValueError, match="need 5 bytes"):
        read_idx(tmp_path / "bad")


def test_fashion_mnist_loader_on_small_idx_files(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    d = load_fashion_mnist(str(tmp_path))
    assert d.train.x.shape == (6, 1, 28, 28) and d.test.y.tolist() == [0, 1] and d.channels == 1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataMissing, match="t10k-labels.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(str(tmp_path))


def test_shakespeare_loads_offline_with_markup_stripped():
    d = load_shakespeare("char")
    text = "".join(d.itos[i] for i in d.train[0][:5000])
    assert "**" not in text and "_" not in d.itos and "#" not in d.itos
    assert "THESEUS\nNow, fair Hippolyta" in text  # speaker line, then verse, no trailing "  "
    n_train, n_val = d.num_tokens("train"), d.num_tokens("val")
    assert 4_000_000 < n_train and 0.09 < n_val / (n_train + n_val) < 0.11
    assert d.vocab_size == len(d.itos) < 256
    assert int(d.train[0].max()) < d.vocab_size
    assert strip_markdown("## ACT I\n**HAMLET**  \n_Exit_  ") == "ACT I\nHAMLET\nExit"


def test_shakespeare_byte_level_is_utf8():
    d = load_shakespeare("byte")
    assert d.vocab_size == 256 and bytes(d.train[0][:9]).decode() == "A Midsumm"


def test_augment_is_crop_and_flip_per_sample():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 2, 6, 7), dtype=torch.uint8, generator=g)
    shifts, flips = draw_augment(5, 2, g)
    out = augment(x, 2, shifts, flips)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(5):  # the batched ops against a per-sample reference
        ref = padded[i, :, shifts[i, 0]: shifts[i, 0] + 6, shifts[i, 1]: shifts[i, 1] + 7]
        assert torch.equal(out[i], ref.flip(2) if flips[i] else ref)
    centre = torch.full((5, 2), 2)
    assert torch.equal(augment(x, 2, centre, None), x)


def test_catalog_reports_and_exits_zero(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMOPT_CIFAR10", str(tmp_path / "nope"))
    assert catalog.main([]) == 0
    out = capsys.readouterr().out
    assert "shakespeare     found" in out and "cifar10         MISSING" in out and str(tmp_path / "nope") in out
