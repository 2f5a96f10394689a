"""CIFAR-style ResNets (3x3 stem, no max-pool): ResNet-18 and a small ResNet for CPU runs;
``resnet18_imagenet``: the ImageNet stem (7x7 stride-2 conv, 3x3 stride-2 max-pool), with
:func:`from_torchvision_state_dict` to load a user-provided torchvision ``resnet18`` checkpoint.

The classifier is named ``fc`` so that geomopt.optim.routing sends it to AdamW;
conv filters are hidden matrices (viewed as (out, in·k·k)), BatchNorm gains and
biases go to AdamW without weight decay. ``in_channels`` is 1 for Fashion-MNIST.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """``blocks[i]`` BasicBlocks at width ``widths[i]``; stage i > 0 halves the resolution."""

    def __init__(self, blocks: tuple[int, ...], widths: tuple[int, ...], in_channels: int = 3,
                 num_classes: int = 10, stem: str = "cifar"):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError(f"blocks {blocks} and widths {widths} must have the same length")
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem {stem!r} unknown; choose cifar or imagenet")
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        self.pool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_planes = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                layers.append(BasicBlock(in_planes, w, 2 if (i > 0 and j == 0) else 1))
                in_planes = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_planes, num_classes)

    def features(self, x):
        """The pooled penultimate features (what a linear probe sees)."""
        out = self.layers(self.pool(F.relu(self.bn1(self.conv1(x)))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


def resnet18(in_channels: int = 3, num_classes: int = 10, width: int = 64) -> ResNet:
    """CIFAR ResNet-18 (11.2M parameters at width 64)."""
    return ResNet((2, 2, 2, 2), (width, 2 * width, 4 * width, 8 * width), in_channels, num_classes)


def resnet_small(in_channels: int = 1, num_classes: int = 10, width: int = 16) -> ResNet:
    """ResNet-8-like (one block per stage, three stages; ~78k parameters at width 16) for CPU runs."""
    return ResNet((1, 1, 1), (width, 2 * width, 4 * width), in_channels, num_classes)


def resnet18_imagenet(in_channels: int = 3, num_classes: int = 1000, width: int = 64) -> ResNet:
    """ImageNet ResNet-18 (torchvision's layout: 7x7 stem + max-pool; 11.7M parameters)."""
    return ResNet((2, 2, 2, 2), (width, 2 * width, 4 * width, 8 * width), in_channels, num_classes, stem="imagenet")


def from_torchvision_state_dict(state: dict, blocks: tuple[int, ...] = (2, 2, 2, 2)) -> dict:
    """torchvision ResNet names -> ours: ``layer{s}.{b}.`` -> ``layers.{i}.``, ``downsample`` -> ``shortcut``."""
    first = [sum(blocks[:s]) for s in range(len(blocks))]
    out = {}
    for key, value in state.items():
        if key.startswith("layer"):
            stage, block, rest = key[len("layer"):].split(".", 2)
            key = f"layers.{first[int(stage) - 1] + int(block)}.{rest.replace('downsample.', 'shortcut.')}"
        out[key] = value
    return out


RESNETS = {"resnet18": resnet18, "resnet_small": resnet_small}
