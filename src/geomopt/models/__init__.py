"""Plain nn.Modules: ``gpt`` (nanoGPT-style GPT), ``resnet`` (CIFAR / ImageNet ResNets), ``cnn`` (a small CNN).

Names follow geomopt.optim.routing: embeddings are ``nn.Embedding``, output layers are
``lm_head`` / ``fc`` (both routed to AdamW); hidden Linear weights and conv filters
go to the matrix optimizer.
"""

from geomopt.models.cnn import SmallCNN, cnn_small
from geomopt.models.gpt import GPT, GPT_SIZES, GPTConfig
from geomopt.models.resnet import RESNETS, ResNet, resnet18, resnet18_imagenet, resnet_small

# The image models the trainer can build (config key ``model``): name -> f(in_channels, num_classes, width).
IMAGE_MODELS = {**RESNETS, "cnn_small": cnn_small}

__all__ = ["GPT", "GPTConfig", "GPT_SIZES", "IMAGE_MODELS", "RESNETS", "ResNet", "SmallCNN", "cnn_small", "resnet18",
           "resnet18_imagenet", "resnet_small"]
