"""Membership inference against an image-to-image generator: does it still treat forget images as training data?

The attack (ALGORITHM.md §5, "What forgotten means"). Every image gets a score: the family's
``membership_error`` (the default: the generator's mean squared error on the hidden pixels; the
diffusion family: its denoising loss at fixed timesteps and noise), averaged over a fixed set of masks (``RANDOM_DRAWS`` random masks
at the model's own ratio and centre boxes of a quarter and half of the side, seeded, so the base and a
candidate see identical masks). A model reconstructs what it was trained on better than what it never
saw, so a *lower* error means "more likely a member"; the attacker's membership score is minus the
error. Positives are the forget images, negatives are never-seen images of the same distribution (for
a class: held-out images of that class; for single samples: held-out images of their classes). The
attack reports ROC AUC (exact Mann-Whitney statistic with ties counted one half), TPR at 1 % FPR (no
interpolation: the best TPR whose FPR does not exceed 1 %) and a downsampled ROC curve.

Two variants, before and after:

- **raw**: the published model's own errors. This is the attack anyone holding only the model can
  run, and the one whose value for a model retrained without the forget set is 0.5 by construction
  (to that model the forget images *are* never-seen images of the same distribution).
- **calibrated** against the base (``difference``: err_after - err_base; ``ratio``: err_after /
  err_base): the attack of someone who also holds the parent version. For the base itself it is
  identically zero, so its "before" AUC is 0.5 whatever the model remembers, and a run that changed
  nothing also scores 0.5: it cannot tell "forgotten" from "untouched". After a targeted run it
  falls below 0.5 (forget errors rose more than never-seen ones): it measures how selective the run
  was, which is also what makes the change visible to a holder of both versions. A retrained model
  would show the same signature, so driving it to 0.5 is not the goal; it is reported, not gated.

The **raw AUC drives the verdict**, two-sided: *forgotten* when AUC <= 0.5 + delta (forget images no
longer look like training data: catches a run that did nothing) and *not over-forgotten* when
AUC >= 0.5 - delta (they do not look conspicuously *worse* than never-seen data: catches the
"Streisand" over-forgetting that noise targets produce). delta is sample-size aware: under the null
(both sets from one distribution) the AUC of n positives and m negatives has standard deviation
sqrt((n + m + 1) / (12 n m)), and delta = max(delta_min, z * sigma), so an 8-image request is not
judged on noise (n = 8, m = 256 gives sigma 0.10, delta 0.21 at z = 2).

What the raw attack cannot see: forgetting a whole *class* degrades the held-out images of that class
as much as the forgotten ones (the model generalises), so class forgetting is judged by the class
evidence (:mod:`worker.unlearn.class_evidence`) on top of this.

Images are (N, C, H, W) floats in [0, 1]; token masks (N, L) bool, True = hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

RANDOM_DRAWS = 4  # random masks at the model's ratio per image
BOXES = {"box_25": 0.25, "box_50": 0.5}  # centre boxes: a quarter and half of the side
ROC_POINTS = 41  # at most this many (fpr, tpr) points are reported
TARGET_FPR = 0.01
NULL_Z = 2.0  # delta is at least this many null standard deviations of the AUC


def mask_names() -> list[str]:
    """The names of the fixed masks, in the column order of :class:`MaskedPass`."""
    return [f"random_{d}" for d in range(RANDOM_DRAWS)] + list(BOXES)


def fixed_masks(adapter, n: int, seed: int) -> list[Tensor]:
    """The fixed token masks, one (N, L) bool per name of :func:`mask_names`; they depend on (n, seed) only."""
    randoms = [adapter.random_mask(n, torch.Generator().manual_seed(seed * 1009 + d)) for d in range(RANDOM_DRAWS)]
    return randoms + [adapter.box_mask(n, frac) for frac in BOXES.values()]


@dataclass(frozen=True)
class MaskedPass:
    """One generator's outputs on the fixed masks, per image and mask.

    errors: (N, M) mean squared error on the hidden pixels; predictions: (N, M) class indices of a
    classifier on the outputs, or None; visible_predictions: (N, M) the classifier's indices on the
    masked *inputs* with the hidden pixels set to the model's pixel mean (no generator at all), or None.
    """

    errors: Tensor
    predictions: Tensor | None = None
    visible_predictions: Tensor | None = None

    @property
    def scores(self) -> Tensor:
        """(N,) the per-image error: mean over the fixed masks."""
        return self.errors.mean(dim=1)


@torch.no_grad()
def masked_pass(adapter, images: Tensor, *, seed: int, classify: Callable[[Tensor], Tensor] | None = None,
                batch_size: int = 256) -> MaskedPass:
    """Run ``adapter`` on ``images`` under every fixed mask (forward passes only).

    images: (N, C, H, W) in [0, 1]. classify: (B, C, H, W) -> (B, K) logits on the adapter's device.
    """
    if images.shape[0] == 0:
        raise ValueError("masked_pass needs at least one image")
    device = adapter.device
    masks = fixed_masks(adapter, images.shape[0], seed)  # M x (N, L)
    fill = torch.tensor(adapter.config.pixel_mean, device=device).view(1, -1, 1, 1)  # (1, C, 1, 1)
    errors, predictions, visible = [], [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)  # (B, C, H, W)
        row_err, row_pred, row_vis = [], [], []
        for mask in masks:
            m = mask[start : start + batch_size].to(device)  # (B, L)
            hidden = adapter.hidden_pixels(m)  # (B, 1, H, W) bool
            out = adapter.generate(x, m).float() if classify is not None else None  # (B, C, H, W)
            row_err.append(adapter.membership_error(x, m, out).double().cpu())  # (B,) the family's error
            if classify is not None:
                row_pred.append(classify(out).argmax(dim=1).cpu())  # (B,)
                row_vis.append(classify(torch.where(hidden, fill, x)).argmax(dim=1).cpu())  # (B,)
        errors.append(torch.stack(row_err, dim=1))  # (B, M)
        if classify is not None:
            predictions.append(torch.stack(row_pred, dim=1))
            visible.append(torch.stack(row_vis, dim=1))
    if classify is None:
        return MaskedPass(torch.cat(errors).double())
    return MaskedPass(torch.cat(errors).double(), torch.cat(predictions), torch.cat(visible))


def auc(positives: Tensor, negatives: Tensor) -> float:
    """ROC AUC of scores (higher = positive): P(pos > neg) + P(pos == neg) / 2, exactly (Mann-Whitney U).

    positives: (n,), negatives: (m,). Ranks are averaged over ties, so equal scores count one half.
    """
    n, m = positives.numel(), negatives.numel()
    if n == 0 or m == 0:
        raise ValueError("the AUC needs at least one positive and one negative score")
    both = torch.cat([positives.flatten(), negatives.flatten()]).double()  # (n + m,)
    _, inverse, counts = torch.unique(both, sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # (G,) 1-based rank of each tie group's last member
    ranks = (last - (counts.double() - 1) / 2)[inverse]  # (n + m,) average rank of each score
    u = ranks[:n].sum() - n * (n + 1) / 2  # pairs a positive wins, ties counted 1/2
    return float(u / (n * m))


def roc_curve(positives: Tensor, negatives: Tensor) -> list[tuple[float, float]]:
    """(fpr, tpr) points from (0, 0) to (1, 1), one per distinct score threshold (score >= t is positive)."""
    pos, neg = positives.flatten().double(), negatives.flatten().double()
    thresholds = torch.unique(torch.cat([pos, neg]), sorted=True).flip(0)  # (G,) descending
    tpr = (pos[None, :] >= thresholds[:, None]).double().mean(dim=1)  # (G,)
    fpr = (neg[None, :] >= thresholds[:, None]).double().mean(dim=1)  # (G,)
    return [(0.0, 0.0)] + list(zip(fpr.tolist(), tpr.tolist()))


def tpr_at_fpr(curve: list[tuple[float, float]], fpr: float = TARGET_FPR) -> float:
    """The highest TPR among ROC points whose FPR is at most ``fpr`` (no interpolation)."""
    return max(t for f, t in curve if f <= fpr + 1e-12)


def downsample(curve: list[tuple[float, float]], points: int = ROC_POINTS) -> list[list[float]]:
    """At most ``points`` points of ``curve``, evenly spaced along it, first and last kept, rounded."""
    if len(curve) > points:
        idx = sorted({round(i * (len(curve) - 1) / (points - 1)) for i in range(points)})
        curve = [curve[i] for i in idx]
    return [[round(f, 4), round(t, 4)] for f, t in curve]


def auc_null_std(n: int, m: int) -> float:
    """Standard deviation of the AUC of n positives vs m negatives drawn from one distribution."""
    return math.sqrt((n + m + 1) / (12 * n * m))


def tolerance(n: int, m: int, delta_min: float, z: float = NULL_Z) -> float:
    """delta = max(delta_min, z * null std): how far from 0.5 an AUC may be before it means something."""
    return max(delta_min, z * auc_null_std(n, m))


def attack(member_scores: Tensor, nonmember_scores: Tensor) -> dict:
    """AUC, TPR at 1 % FPR and the downsampled ROC curve of membership scores (higher = member)."""
    curve = roc_curve(member_scores, nonmember_scores)
    return {"auc": round(auc(member_scores, nonmember_scores), 6), "tpr_at_1pct_fpr": round(tpr_at_fpr(curve), 6),
            "roc": downsample(curve)}  # fmt: skip


def class_centred(forget: Tensor, never: Tensor, forget_labels: list[str], never_labels: list[str]):
    """Scores compared within each class: (forget (n',), never (m,), kept forget rows (n',)).

    A job's forget set and its never-seen images need not share a class mix (a whole class plus a few
    single samples of other classes against never-seen images of all those classes); classes differ in
    how hard they are to fill, so a pooled attack would measure the mix, not membership. Each score is
    centred on the median never-seen score of its class; forget images of a class with no never-seen
    image cannot be judged and are left out.
    """
    medians = {c: never[[i for i, label in enumerate(never_labels) if label == c]].median() for c in set(never_labels)}
    kept = [i for i, label in enumerate(forget_labels) if label in medians]
    f = forget[kept] - torch.stack([medians[forget_labels[i]] for i in kept]) if kept else forget[:0]  # (n',)
    n = never - torch.stack([medians[label] for label in never_labels])  # (m,)
    return f, n, torch.tensor(kept, dtype=torch.long)


def membership(base_forget: MaskedPass, base_never: MaskedPass, after_forget: MaskedPass,
               after_never: MaskedPass, *, forget_labels: list[str] | None = None,
               never_labels: list[str] | None = None) -> dict:
    """The attacks before and after, raw and calibrated against the base, forget = members.

    Each pass holds (N, M) errors; an image's membership score is minus its mean error (raw), minus
    its error increase over the base (difference) or minus its error ratio to the base (ratio). With
    labels, forget and never-seen images are compared within their classes (:func:`class_centred`).
    """
    bf, bn, af, an = base_forget.scores, base_never.scores, after_forget.scores, after_never.scores  # (n,), (m,)
    raw = {"before": (-bf, -bn), "after": (-af, -an)}
    matched = forget_labels is not None and never_labels is not None
    if matched:
        cbf, cbn, kept = class_centred(bf, bn, forget_labels, never_labels)
        caf, can, _ = class_centred(af, an, forget_labels, never_labels)
        if not len(kept):
            raise ValueError("no forget image shares a class with the never-seen images")
        raw = {"before": (-cbf, -cbn), "after": (-caf, -can)}
        bf, af = bf[kept], af[kept]
    eps = 1e-12  # a perfect base fill has zero error; the ratio stays finite
    zero_f, zero_n = torch.zeros_like(bf), torch.zeros_like(bn)
    return {
        "n_forget": int(bf.numel()),
        "class_matched": matched,
        "n_never_seen": int(bn.numel()),
        "masks": mask_names(),
        "raw": {"before": attack(*raw["before"]), "after": attack(*raw["after"])},
        "calibrated_difference": {"before": attack(zero_f, zero_n), "after": attack(-(af - bf), -(an - bn))},
        "calibrated_ratio": {"before": attack(zero_f, zero_n),
                             "after": attack(-(af + eps) / (bf + eps), -(an + eps) / (bn + eps))},
        "mean_error": {"forget": {"before": float(bf.mean()), "after": float(af.mean())},
                       "never_seen": {"before": float(bn.mean()), "after": float(an.mean())}},
        "null_std": round(auc_null_std(int(bf.numel()), int(bn.numel())), 6),
    }  # fmt: skip
