"""A small CNN for CPU runs whose last block is a bias-free linear map (paper 4's deep analogue).

``backbone``: three 3x3 conv layers (widths w, 2w, 2w) with ReLU, two max-pools and a
stride-2 conv, then adaptive average pooling to 4x4 and flattening (28x28 inputs are
already 4x4 there, so for Fashion-MNIST the pooling is the identity): 2w·16 features.
``last_block``: Linear(2w·16 -> feature_dim, no bias), the layer paper 4 immunizes; its
weight is θᵀ, so the attacker's linear probe on ``features(x) = backbone(x)·θ`` has
Hessian θᵀKθ with K = ZᵀZ of the backbone features Z. ``fc``: the classifier (named
``fc`` so that geomopt.optim.routing sends it to AdamW).
"""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16, feature_dim: int = 64):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.last_block = nn.Linear(2 * width * 16, feature_dim, bias=False)  # θᵀ: the immunized block
        self.fc = nn.Linear(feature_dim, num_classes)

    def features(self, x):
        return self.last_block(self.backbone(x))

    def forward(self, x):
        return self.fc(self.features(x))


def cnn_small(in_channels: int = 1, num_classes: int = 10, width: int = 16) -> SmallCNN:
    """SmallCNN with 64 features (~45k parameters at width 16, 1 channel, 5 classes)."""
    return SmallCNN(in_channels, num_classes, width)
