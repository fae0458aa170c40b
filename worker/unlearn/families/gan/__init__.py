"""The GAN family (a sampler: generates from latent codes): DCGAN-style adapter, training recipe, cascaded unlearning."""

from . import cascade  # noqa: F401  (registers the gan_cascade method)
from .adapter import GANAdapter, GANConfig
from .cascade import GanCascadeParams, run_gan_cascade
from .train import GANTrainConfig, train_gan

__all__ = ["GANAdapter", "GANConfig", "GANTrainConfig", "GanCascadeParams", "run_gan_cascade", "train_gan"]
