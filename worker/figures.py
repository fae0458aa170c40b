"""Report figures: retain-side hold-out only. Forget-set images never enter a figure."""

import base64
import hashlib
import io

import torch
from PIL import Image

from worker.unlearn.tv import import_torchvision


@torch.no_grad()
def retain_grid(base, candidate, images: torch.Tensor, sample_keys: list[str], *, side_frac: float = 0.5) -> dict:
    """Rows: masked input, base output, new output, for up to 8 retain hold-out images (N, C, H, W)."""
    utils = import_torchvision().utils
    images = images[:8].to(base.device)
    mask = base.box_mask(len(images), side_frac)  # (N, L) same centre box for both models
    hidden = base.hidden_pixels(mask)  # (N, 1, H, W)
    masked = images.masked_fill(hidden, 0.5)
    rows = torch.cat([masked, base.generate(images, mask), candidate.generate(images, mask)])  # (3N, C, H, W)
    grid = utils.make_grid(rows.cpu().clamp(0, 1), nrow=len(images), padding=2, pad_value=1.0)  # (C, H', W')
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 or grid.shape[0] == 1 else array)
    picture = picture.resize((picture.width * 3, picture.height * 3), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    png = buffer.getvalue()
    return {
        "title": "Retain-side hold-out (centre box of half the side): masked input, base output, new output",
        "set": "retain",
        "sample_keys": sample_keys[: len(images)],
        "png_digest": hashlib.sha256(png).hexdigest(),
        "png_base64": base64.b64encode(png).decode(),
    }
