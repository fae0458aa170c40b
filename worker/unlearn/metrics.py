"""How a run is judged (ALGORITHM.md §5): generator quality on fixed masks, before vs after.

Per task (two centre-box sizes and random masking) and for any set of images:

- ``psnr``: PSNR of the output against the original inside the hidden region (dB, capped);
- ``ssim``: Gaussian-window SSIM map averaged over the hidden region;
- ``cosine``: cosine similarity of output and original in a feature space (by default the
  penultimate layer of the small evaluation classifier, :mod:`worker.unlearn.features`);
- ``frechet``: Fréchet distance between the Gaussian fits of output and original features:
  a Fréchet distance in that classifier's feature space, not "FID" (no Inception network).

Images are (N, C, H, W) float in [0, 1]; a region is (N, 1, H, W) bool, True = hidden pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PSNR_CAP_DB = 100.0  # PSNR of a (near-)perfect fill: MSE <= 1e-10 reads as 100 dB, never inf
TASKS = ("box_25", "box_50", "random")
_SSIM_SIGMA, _SSIM_RADIUS = 1.5, 5  # the usual 11x11 Gaussian window, sigma 1.5
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2  # stabilisers (K1 L)^2, (K2 L)^2 for data range L = 1


def _region_weights(region: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """region (N, 1, H, W) bool -> float weights (N, 1, H, W) and hidden-pixel count x C (N,)."""
    if region.dtype != torch.bool or region.dim() != 4 or region.shape[1] != 1:
        raise ValueError(f"region must be (N, 1, H, W) bool, got {tuple(region.shape)} {region.dtype}")
    weights = region.float()  # (N, 1, H, W)
    count = weights.sum(dim=(1, 2, 3))  # (N,)
    if bool((count == 0).any()):
        raise ValueError("every row of the region must hide at least one pixel")
    return weights, count * channels


def psnr_in_region(out: Tensor, ref: Tensor, region: Tensor) -> Tensor:
    """PSNR (dB) over the hidden pixels of each row, capped at ``PSNR_CAP_DB``.

    out, ref: (N, C, H, W) in [0, 1]; region: (N, 1, H, W) bool. Returns (N,).
    """
    weights, count = _region_weights(region, out.shape[1])
    sq_err = (out.float() - ref.float()).square() * weights  # (N, C, H, W), zero outside
    mse = sq_err.sum(dim=(1, 2, 3)) / count  # (N,)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp_max(PSNR_CAP_DB)  # (N,)


def _gaussian_blur(x: Tensor) -> Tensor:
    """Depthwise Gaussian blur with reflect padding, so the map keeps full size (N, C, H, W)."""
    offsets = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    g = g / g.sum()  # (K,)
    channels = x.shape[1]
    x = F.pad(x, [_SSIM_RADIUS] * 4, mode="reflect")  # (N, C, H + 2r, W + 2r)
    # Separable: a (K, 1) pass then a (1, K) pass, one filter per channel (groups=C).
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def ssim_in_region(out: Tensor, ref: Tensor, region: Tensor) -> Tensor:
    """SSIM (Wang et al. 2004) map with an 11x11 Gaussian window, averaged over hidden pixels.

    The map is computed on the whole image (reflect-padded at the borders, which 28x28 images
    with boxes touching the edge need) and then averaged over channels and the region, so a
    hidden pixel's score also reflects its visible neighbours inside the window.
    out, ref: (N, C, H, W) in [0, 1]; region: (N, 1, H, W) bool. Returns (N,).
    """
    if min(out.shape[-2:]) <= _SSIM_RADIUS:
        raise ValueError(f"images must be larger than {_SSIM_RADIUS} pixels per side for SSIM")
    weights, count = _region_weights(region, out.shape[1])
    x, y = out.float(), ref.float()  # (N, C, H, W)
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)  # local means (N, C, H, W)
    var_x = _gaussian_blur(x * x) - mu_x**2  # local variances and covariance (N, C, H, W)
    var_y = _gaussian_blur(y * y) - mu_y**2
    cov_xy = _gaussian_blur(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + _SSIM_C1) / (mu_x**2 + mu_y**2 + _SSIM_C1)
    structure = (2 * cov_xy + _SSIM_C2) / (var_x + var_y + _SSIM_C2)
    ssim_map = luminance * structure  # (N, C, H, W)
    return (ssim_map * weights).sum(dim=(1, 2, 3)) / count  # (N,)


def feature_cosine(f_out: Tensor, f_ref: Tensor) -> Tensor:
    """Row-wise cosine similarity of features (N, F) and (N, F) -> (N,); 0 for a zero vector."""
    return F.cosine_similarity(f_out.float(), f_ref.float(), dim=1, eps=1e-8)  # (N,)


def _sqrt_psd(m: Tensor) -> Tensor:
    """Symmetric square root of a symmetric PSD matrix (F, F) via eigh; negative round-off -> 0."""
    eigvals, eigvecs = torch.linalg.eigh(m)  # (F,), (F, F)
    return (eigvecs * eigvals.clamp_min(0).sqrt()) @ eigvecs.T  # V diag(sqrt w) V^T


def frechet_distance(f_a: Tensor, f_b: Tensor) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (N_a, F) and (N_b, F).

    d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½), in float64.

    Numerics: the cross term uses the symmetric form S_a^½ S_b S_a^½, which stays symmetric
    PSD, so both square roots come from ``eigh`` with eigenvalues clamped at 0; no complex
    ``sqrtm`` and no scipy. With N <= F the covariances are singular (rank <= N - 1), which this
    form handles. The estimate is biased upward at small N, so only compare values computed
    with the same N (evaluate does: same images for base and candidate). Needs N >= 2.
    """
    if f_a.shape[0] < 2 or f_b.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least 2 feature rows per set")
    a, b = f_a.double(), f_b.double()  # (N_a, F), (N_b, F)
    mu_a, mu_b = a.mean(0), b.mean(0)  # (F,)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)  # (F, F), unbiased
    sqrt_a = _sqrt_psd(cov_a)  # (F, F)
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp_min(0).sqrt().sum()
    d2 = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return float(d2.clamp_min(0))


def _masks(adapter, task: str, n: int, seed: int) -> Tensor:
    """The fixed (N, L) token mask of a task; independent of batch size."""
    if task == "box_25":
        return adapter.box_mask(n, 0.25)
    if task == "box_50":
        return adapter.box_mask(n, 0.5)
    if task == "random":
        return adapter.random_mask(n, torch.Generator().manual_seed(seed))
    raise ValueError(f"unknown task {task!r}; known: {TASKS}")


@torch.no_grad()
def evaluate(
    adapter,
    images: Tensor,
    features: Callable[[Tensor], Tensor] | None,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, dict[str, float | None]]:
    """Run the generator on fixed masks and score its fills against the originals.

    adapter: an image-to-image adapter (``box_mask``, ``random_mask``, ``generate``,
    ``hidden_pixels``; see ``worker.unlearn.adapters.base``). images: (N, C, H, W) in [0, 1].
    features: a FeatureNet (its ``.features`` is used) or any callable (B, C, H, W) -> (B, F),
    on the adapter's device; None when no feature space is configured. Masks depend only on
    (task, N, seed), so the base and a candidate evaluated with the same seed see identical masks.
    Returns {task: {"psnr", "ssim", "cosine" (means over rows), "frechet", "n"}}; "cosine" and
    "frechet" are None without ``features``, and "frechet" is None for N < 2 (no covariance).
    """
    if images.shape[0] == 0:
        raise ValueError("evaluate needs at least one image")
    extract = getattr(features, "features", features)
    device = getattr(adapter, "device", images.device)
    n = images.shape[0]
    batches = [images[s : s + batch_size].to(device) for s in range(0, n, batch_size)]  # (B, C, H, W)
    if extract is not None:
        f_ref = torch.cat([extract(ref).cpu() for ref in batches])  # (N, F), shared by all tasks
    results = {}
    for task in tasks or TASKS:
        masks = _masks(adapter, task, n, seed).to(device).split(batch_size)  # (B, L) bool each
        psnr, ssim, f_out = [], [], []
        for ref, mask in zip(batches, masks):
            out = adapter.generate(ref, mask)  # (B, C, H, W), visible pixels copied
            region = adapter.hidden_pixels(mask)  # (B, 1, H, W) bool
            psnr.append(psnr_in_region(out, ref, region).cpu())
            ssim.append(ssim_in_region(out, ref, region).cpu())
            if extract is not None:
                f_out.append(extract(out).cpu())  # (B, F)
        scores = {"psnr": float(torch.cat(psnr).mean()), "ssim": float(torch.cat(ssim).mean()),
                  "cosine": None, "frechet": None, "n": n}  # fmt: skip
        if extract is not None:
            f_out = torch.cat(f_out)  # (N, F)
            scores["cosine"] = float(feature_cosine(f_out, f_ref).mean())
            scores["frechet"] = frechet_distance(f_out, f_ref) if n >= 2 else None
        results[task] = scores
    return results
