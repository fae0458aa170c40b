"""The diffusion family (Palette-style conditional inpainting on a diffusers UNet2DModel):
adapter, pre-training recipe, membership hook, import of a diffusers ``save_pretrained`` folder."""

from .adapter import DiffusionAdapter, DiffusionConfig, demo_unet
from .pretrained import checkpoint_from_pretrained
from .train import DiffusionTrainConfig, train_diffusion

__all__ = ["DiffusionAdapter", "DiffusionConfig", "DiffusionTrainConfig", "checkpoint_from_pretrained",
           "demo_unet", "train_diffusion"]
