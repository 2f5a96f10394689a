"""Plain nn.Modules: ``gpt`` (nanoGPT-style GPT) and ``resnet`` (CIFAR ResNets).

Names follow geomopt.optim.routing: embeddings are ``nn.Embedding``, output layers are
``lm_head`` / ``fc`` (both routed to AdamW); hidden Linear weights and conv filters
go to the matrix optimizer.
"""

from geomopt.models.gpt import GPT, GPT_SIZES, GPTConfig
from geomopt.models.resnet import RESNETS, ResNet, resnet18, resnet_small

__all__ = ["GPT", "GPTConfig", "GPT_SIZES", "RESNETS", "ResNet", "resnet18", "resnet_small"]
