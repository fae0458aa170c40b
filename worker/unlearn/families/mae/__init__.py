"""The masked-autoencoder family (He et al. 2022, official layout): adapter, ViT blocks, pre-training recipe."""

from .adapter import MAEAdapter, MAEConfig, MaskedAutoencoderViT
from .train import MAETrainConfig, train_mae

__all__ = ["MAEAdapter", "MAEConfig", "MAETrainConfig", "MaskedAutoencoderViT", "train_mae"]
