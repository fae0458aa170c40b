"""Judge a sampler (a GAN: images from latent codes) against its base on fixed latent codes.

The sampler counterpart of :class:`worker.evaluation.Judge`; the same sets (forget images, the
retain-side hold-out, the never-seen reference), read differently because a sampler has no input
image to reconstruct. With ``samples`` latent codes drawn once from the job's seed, for base and
candidate alike:

- **forgotten-class share** (classes forgotten whole): the share of generated samples the
  evaluation classifier assigns to a forgotten class, before and after; with every class's share.
- **nearest-neighbour membership** (every request): each forget image's distance (pixels, L2) to
  its closest generated sample against the same for never-seen images of its classes; AUC of
  "closer = member" (0.5: the forget images are no closer to what the model generates than images
  it never saw). Shaped like the masked models' ``membership`` section (``raw.before/after.auc``).
- **retained Fréchet distance**: in the classifier's feature space, between the generated samples
  the classifier does not assign to a forgotten class and the retain-side hold-out images.

The publish gate reading this is worker/sampler_gate.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from worker.evaluation import EvalSets, Judgement
from worker.unlearn.class_evidence import class_indices
from worker.unlearn.metrics import frechet_distance
from worker.unlearn.mia import auc

SAMPLES = 2048  # latent codes of the final evaluation
PROBE_SAMPLES = 512  # of the probe (every K steps)
_CHUNK = 512


@dataclass(frozen=True)
class SamplerJudgement(Judgement):
    """A :class:`Judgement` of a sampler; ``metrics["samples"]["before"|"after"]["generated"]`` holds its numbers."""


class SamplerJudge:
    """The base's numbers on fixed latent codes, computed once; call it with a candidate to judge that candidate."""

    @torch.no_grad()
    def __init__(self, base, sets: EvalSets, features, *, seed: int, samples: int = SAMPLES) -> None:
        self.sets, self.features, self.seed = sets, features, seed
        self.z = base.latent(samples, torch.Generator().manual_seed(seed + 7919))  # codes no training run draws
        self.unavailable: dict[str, str] = {}
        self.forget_idx = self._forget_class_indices()
        self.retain_features = None
        if features is not None and sets.retain is not None and len(sets.retain) >= 2:
            self.retain_features = _features(features, sets.retain.to(_device(features)))
        elif features is None:
            self.unavailable["frechet"] = "the model has no feature network"
        else:
            self.unavailable["frechet"] = "fewer than 2 retain hold-out images"
        if sets.reference is None or not len(sets.reference) or not len(sets.forget):
            self.unavailable["membership"] = ("no never-seen images of the forget samples' classes: the model's "
                                              "proxy set has none (or the model has no proxy set)")  # fmt: skip
        self.before = self._numbers(base)

    def _forget_class_indices(self) -> Tensor | None:
        sets = self.sets
        if not sets.forget_classes:
            self.unavailable["class_evidence"] = "not applicable: no class is forgotten whole"
            return None
        names = (getattr(self.features, "header", None) or {}).get("class_names")
        if self.features is None or not names:
            self.unavailable["class_evidence"] = "the model has no feature network with class names"
            return None
        idx = class_indices(names, list(sets.forget_classes))
        if idx is None:
            self.unavailable["class_evidence"] = "the feature network does not know the forgotten classes by name"
        return idx

    @torch.no_grad()
    def _numbers(self, model) -> dict[str, Any]:
        """{"generated": {number: value}, "class_shares": {class: share}} of ``model``'s samples."""
        images = torch.cat([model.sample(self.z[i : i + _CHUNK]) for i in range(0, len(self.z), _CHUNK)])
        out: dict[str, Any] = {"n_samples": len(images)}
        shares: dict[str, float] = {}
        kept = torch.ones(len(images), dtype=torch.bool)
        if self.features is not None:
            feats, logits = _features_and_logits(self.features, images)
            pred = logits.argmax(1).cpu()
            names = (getattr(self.features, "header", None) or {}).get("class_names") or []
            counts = torch.bincount(pred, minlength=logits.shape[1]).double() / len(pred)
            shares = {(names[i] if i < len(names) else str(i)): round(float(counts[i]), 6) for i in range(logits.shape[1])}
            if self.forget_idx is not None:
                hit = torch.isin(pred, self.forget_idx.cpu())
                out["forgotten_class_share"] = round(float(hit.double().mean()), 6)
                kept = ~hit
            if self.retain_features is not None and int(kept.sum()) >= 2:
                out["retained_frechet"] = round(frechet_distance(feats[kept.to(feats.device)], self.retain_features), 6)
        if "membership" not in self.unavailable:
            gen = images.flatten(1)
            d_forget = _nearest(self.sets.forget.to(gen.device).flatten(1), gen)
            d_never = _nearest(self.sets.reference.to(gen.device).flatten(1), gen)
            out["nn_membership_auc"] = round(auc(-d_forget, -d_never), 6)
            out["nn_distance_forget_mean"] = round(float(d_forget.mean()), 6)
            out["nn_distance_never_seen_mean"] = round(float(d_never.mean()), 6)
        return {"generated": out, "class_shares": shares}

    @torch.no_grad()
    def __call__(self, candidate) -> SamplerJudgement:
        after_all = self._numbers(candidate)
        metrics = {"samples": {"before": self.before, "after": after_all}}
        before, after = self.before["generated"], after_all["generated"]
        membership = None
        if "nn_membership_auc" in after:
            membership = {"attack": "nearest_neighbour", "space": "pixels (L2)", "n_forget": len(self.sets.forget),
                          "n_never_seen": len(self.sets.reference), "n_samples": len(self.z),
                          "raw": {"before": {"auc": before["nn_membership_auc"]},
                                  "after": {"auc": after["nn_membership_auc"]}}}  # fmt: skip
        evidence = None
        if "forgotten_class_share" in after:
            evidence = {"measure": "share of generated samples the classifier assigns to a forgotten class",
                        "classes": list(self.sets.forget_classes),
                        "before": before["forgotten_class_share"], "after": after["forgotten_class_share"]}  # fmt: skip
        return SamplerJudgement(metrics, membership, evidence, dict(self.unavailable))


def _device(module) -> torch.device:
    return next(module.parameters()).device


def _features_and_logits(net, images: Tensor) -> tuple[Tensor, Tensor]:
    images = images.to(_device(net))
    feats = torch.cat([net.features(images[i : i + _CHUNK]) for i in range(0, len(images), _CHUNK)])
    return feats, net.head(feats)


def _features(net, images: Tensor) -> Tensor:
    return _features_and_logits(net, images)[0]


def _nearest(queries: Tensor, pool: Tensor) -> Tensor:
    """(Q, D), (P, D) -> (Q,) L2 distance from each query to its nearest pool row."""
    return torch.cat([torch.cdist(queries[i : i + _CHUNK], pool).min(dim=1).values for i in range(0, len(queries), _CHUNK)])
