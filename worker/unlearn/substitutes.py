"""Forget targets of encoder-L2: what the encoder should produce on a forget image instead.

``noise`` (the paper's): the teacher's latent of a noise image under the same mask.
``substitute`` (after the substitution mechanism of GAN unlearning, Sun et al. 2023): the teacher's
latent of one of the forget image's nearest *proxy* images (pixel distance) under the same mask;
a model that never saw the forget data would fill it in from what it did see, and its nearest
neighbours are the closest public stand-in for that. ``mixture``: each forget row takes a noise
target with probability ``noise_share`` and a substitute target otherwise.

Substitutes come only from the retain-side rows when the caller says those rows are public proxy
images (retain-free mode, where the retain rows are the proxy set minus the forget classes):
never from the forget set, never from retained training data.

:class:`ForgetPlan` fixes every choice of a run up front from the run's generator: per forget row
of each step, noise or substitute, which noise entry, which substitute and which of its mask draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@torch.no_grad()
def nearest_rows(forget: Tensor, pool: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """(N_f, k) indices of each forget image's ``k`` nearest ``pool`` images (squared pixel distance).

    forget: (N_f, C, H, W), pool: (N_p, C, H, W) floats in [0, 1]; ties go to the lower index.
    """
    k = min(k, len(pool))
    p = pool.flatten(1).double()  # (N_p, P)
    p_sq = p.square().sum(1)  # (N_p,)
    out = []
    for start in range(0, len(forget), chunk):
        f = forget[start : start + chunk].flatten(1).double()  # (n, P)
        d = f.square().sum(1, keepdim=True) - 2 * f @ p.T + p_sq  # (n, N_p)
        idx = torch.arange(len(pool), dtype=torch.float64) * 1e-12  # deterministic tie-break
        out.append((d + idx).topk(k, dim=1, largest=False).indices)  # (n, k)
    return torch.cat(out)


@dataclass
class ForgetPlan:
    """Per forget row of the run (``total * B/2`` rows, in step order):

    use_noise: (R,) bool; noise_ids: (R,) entries of the noise bank (where ``use_noise``);
    sub_rows: (R,) retain-side rows used as substitutes (where not ``use_noise``);
    sub_draws: (R,) which bank mask of that row (cached path) .
    """

    use_noise: Tensor
    noise_ids: Tensor
    sub_rows: Tensor
    sub_draws: Tensor

    @classmethod
    def draw(cls, *, kind: str, noise_share: float, neighbours: Tensor | None, forget_ids: Tensor,
             noise_ids: Tensor, draws_per_image: int, generator: torch.Generator) -> ForgetPlan:  # fmt: skip
        """``neighbours``: (N_f, k) substitute candidates per forget image (None for ``noise``);
        ``forget_ids``: (R,) the forget image of each row; ``noise_ids``: (R,) noise entries."""
        rows = len(forget_ids)
        if kind == "noise":
            use_noise = torch.ones(rows, dtype=torch.bool)
        elif kind == "substitute":
            use_noise = torch.zeros(rows, dtype=torch.bool)
        else:
            use_noise = torch.rand(rows, generator=generator) < noise_share  # (R,)
        if kind == "noise":
            empty = torch.zeros(rows, dtype=torch.long)
            return cls(use_noise, noise_ids, empty, empty)
        pick = torch.randint(neighbours.shape[1], (rows,), generator=generator)  # (R,)
        sub_rows = neighbours[forget_ids, pick]  # (R,)
        sub_draws = torch.randint(draws_per_image, (rows,), generator=generator)  # (R,)
        return cls(use_noise, noise_ids, sub_rows, sub_draws)

    def cached(self, targets, rows: slice) -> tuple[Tensor, Tensor]:
        """Masks (B/2, L) and teacher targets (B/2, T, D) of one step's forget rows, by lookup."""
        m_n, t_n = targets.noise(self.noise_ids[rows])
        if bool(self.use_noise[rows].all()):
            return m_n, t_n
        m_s, t_s = targets.retain(self.sub_rows[rows], self.sub_draws[rows])
        use = self.use_noise[rows].to(m_n.device)  # (B/2,)
        return torch.where(use[:, None], m_n, m_s), torch.where(use[:, None, None], t_n, t_s)

    def teacher_inputs(self, rows: slice, retain: Tensor, noise: Tensor) -> Tensor:
        """(B/2, C, H, W) what the teacher encodes for one step's forget rows (uncached path).

        noise: (B/2, C, H, W) this step's noise images (used where ``use_noise``)."""
        if bool(self.use_noise[rows].all()):
            return noise
        subs = retain[self.sub_rows[rows]].to(noise.device)  # (B/2, C, H, W)
        return torch.where(self.use_noise[rows].to(noise.device)[:, None, None, None], noise, subs)
