"""Membership-inference math on known inputs: AUC with ties, ROC, TPR at 1 % FPR, the null spread."""

import itertools
import math

import pytest
import torch

from tests.unlearn.tiny_models import make_images, make_tiny
from worker.unlearn.mia import (
    MaskedPass,
    attack,
    auc,
    auc_null_std,
    downsample,
    masked_pass,
    membership,
    roc_curve,
    tolerance,
    tpr_at_fpr,
)


def brute_auc(pos, neg) -> float:
    pairs = list(itertools.product(pos, neg))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


@pytest.mark.parametrize("pos, neg, expected", [
    ([3.0, 2.0], [1.0, 0.0], 1.0),
    ([0.0, 1.0], [2.0, 3.0], 0.0),
    ([1.0, 1.0], [1.0, 1.0], 0.5),
    ([2.0, 1.0], [1.0, 0.0], 0.875),  # one tie out of four pairs counts one half
])  # fmt: skip
def test_auc_on_known_inputs(pos, neg, expected):
    assert auc(torch.tensor(pos), torch.tensor(neg)) == pytest.approx(expected, abs=1e-12)


def test_auc_matches_pair_counting_with_many_ties():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randint(0, 6, (37,), generator=g).float(), torch.randint(0, 6, (23,), generator=g).float()
    assert auc(pos, neg) == pytest.approx(brute_auc(pos.tolist(), neg.tolist()), abs=1e-12)


def test_roc_runs_from_origin_to_one_and_tpr_at_1pct_fpr_takes_no_interpolation():
    neg = torch.arange(100.0)  # 0 .. 99
    pos = torch.arange(50.0, 150.0)  # 50 .. 149
    curve = roc_curve(pos, neg)
    assert curve[0] == (0.0, 0.0) and curve[-1] == (1.0, 1.0)
    assert all(f1 <= f2 and t1 <= t2 for (f1, t1), (f2, t2) in zip(curve, curve[1:]))
    # FPR <= 1 % admits exactly one negative (99): the positives >= 99 are 99 .. 149.
    assert tpr_at_fpr(curve) == pytest.approx(51 / 100)
    # The area under the returned curve is the Mann-Whitney AUC.
    area = sum((f2 - f1) * (t1 + t2) / 2 for (f1, t1), (f2, t2) in zip(curve, curve[1:]))
    assert area == pytest.approx(auc(pos, neg))
    points = downsample(curve, 11)
    assert len(points) == 11 and points[0] == [0.0, 0.0] and points[-1] == [1.0, 1.0]


def test_with_few_negatives_1pct_fpr_means_no_negative_may_score_as_high():
    curve = roc_curve(torch.tensor([5.0, 4.0, 1.0]), torch.tensor([4.0, 0.0]))
    assert tpr_at_fpr(curve) == pytest.approx(1 / 3)  # only 5 beats every negative; 4 ties with one


def test_the_null_spread_of_the_auc_and_the_tolerance_it_sets():
    assert auc_null_std(8, 256) == pytest.approx(math.sqrt(265 / (12 * 8 * 256)))
    assert tolerance(8, 256, 0.05) == pytest.approx(2 * auc_null_std(8, 256))  # small sets: noise decides
    assert tolerance(5000, 5000, 0.05) == 0.05  # large sets: the floor decides
    g = torch.Generator().manual_seed(1)
    aucs = torch.tensor([auc(torch.rand(8, generator=g), torch.rand(64, generator=g)) for _ in range(400)])
    assert float(aucs.std()) == pytest.approx(auc_null_std(8, 64), rel=0.2)


def test_calibration_against_the_base_is_blind_to_a_run_that_did_nothing():
    base_f = MaskedPass(torch.tensor([[0.01, 0.02], [0.02, 0.02]], dtype=torch.float64))  # members: low error
    base_n = MaskedPass(torch.tensor([[0.05, 0.06], [0.07, 0.05]], dtype=torch.float64))
    mia = membership(base_f, base_n, base_f, base_n)
    assert mia["raw"]["before"]["auc"] == mia["raw"]["after"]["auc"] == 1.0
    for variant in ("calibrated_difference", "calibrated_ratio"):
        assert mia[variant]["before"]["auc"] == mia[variant]["after"]["auc"] == 0.5
    assert attack(torch.tensor([1.0]), torch.tensor([0.0]))["tpr_at_1pct_fpr"] == 1.0


def test_masked_pass_scores_each_image_on_the_same_fixed_masks():
    model = make_tiny("mae")
    images = make_images(model, 6, seed=3)
    first, again = masked_pass(model, images, seed=0), masked_pass(model, images, seed=0)
    assert first.errors.shape == (6, 6) and torch.equal(first.errors, again.errors)
    assert not torch.equal(first.errors, masked_pass(model, images, seed=1).errors)
    classify = lambda x: x.flatten(1)[:, :3]  # noqa: E731  (any (B, K) logits)
    with_classes = masked_pass(model, images, seed=0, classify=classify)
    assert torch.equal(with_classes.errors, first.errors) and with_classes.predictions.shape == (6, 6)
    assert with_classes.visible_predictions.shape == (6, 6)


def test_membership_is_judged_within_classes_when_the_class_mix_differs():
    """A forgotten class against never-seen images of it and of easier classes: pooled, the mix looks like
    over-forgetting; compared within classes, images drawn alike score alike (AUC near 0.5)."""
    gen = torch.Generator().manual_seed(0)
    hard = lambda n: 1.0 + 0.1 * torch.randn(n, 3, generator=gen, dtype=torch.float64)  # noqa: E731
    easy = lambda n: 0.1 + 0.01 * torch.randn(n, 3, generator=gen, dtype=torch.float64)  # noqa: E731
    forget, never = MaskedPass(hard(200)), MaskedPass(torch.cat([hard(200), easy(600)]))
    never_labels = ["trouser"] * 200 + ["bag"] * 600
    pooled = membership(forget, never, forget, never)
    matched = membership(forget, never, forget, never, forget_labels=["trouser"] * 200, never_labels=never_labels)
    assert pooled["raw"]["after"]["auc"] < 0.2
    assert abs(matched["raw"]["after"]["auc"] - 0.5) < 0.1 and matched["class_matched"] is True


def test_forget_images_of_a_class_without_never_seen_images_are_left_out():
    gen = torch.Generator().manual_seed(1)
    forget = MaskedPass(torch.rand(10, 3, generator=gen, dtype=torch.float64))
    never = MaskedPass(torch.rand(20, 3, generator=gen, dtype=torch.float64))
    result = membership(forget, never, forget, never, forget_labels=["a"] * 6 + ["z"] * 4, never_labels=["a"] * 20)
    assert result["n_forget"] == 6 and result["n_never_seen"] == 20
