"""The two-sided verdict, the gate's check statuses, stop-when-done and the retry decision, on tiny models."""

import copy

import pytest
import torch

from tests.unlearn.tiny_models import make_tiny
from worker.evaluation import EvalSets, Judge
from worker.gate import DEFAULT_GATE, check_gate
from worker.probe import Probe, split_sets
from worker.retry import escalate, gate_failure_message
from worker.unlearn import EncoderL2Config, StopCheck, run_unlearning
from worker.unlearn.class_evidence import class_indices, recognition
from worker.unlearn.methods import run_method
from worker.unlearn.mia import MaskedPass
from worker.unlearn.families.mae.train import MAETrainConfig, train_mae

ALL_OFF = {name: None for name in DEFAULT_GATE}


def noise_images(n: int, seed: int) -> torch.Tensor:
    """(n, 1, 16, 16) uniform noise: nothing to generalise from, so only memorised images fill well."""
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def remembered():
    """A tiny MAE trained on 8 images until it remembers them, and never-seen images of the same kind."""
    torch.set_num_threads(1)
    model = make_tiny("mae")
    forget = noise_images(8, 11)
    train_mae(model, forget, MAETrainConfig(epochs=100, batch_size=8, lr=5e-3, weight_decay=0.0, warmup_epochs=5))
    sets = EvalSets(forget=forget, retain=noise_images(16, 14), reference=noise_images(64, 12))
    return model, sets, noise_images(32, 13)


def wreck_forget_outputs(model, forget: torch.Tensor):
    """A copy of ``model`` whose fills for the forget images are their inverse: conspicuously worse than never-seen."""
    base_class = type(model)

    class Wrecked(base_class):
        def generate(self, imgs, mask):
            out = super().generate(imgs, mask)  # (N, C, H, W)
            hit = (imgs.flatten(1)[:, None] == forget.to(imgs.device).flatten(1)[None]).all(-1).any(1)  # (N,)
            return torch.where(hit[:, None, None, None] & self.hidden_pixels(mask), 1 - imgs, out)

    wrecked = copy.deepcopy(model)
    wrecked.__class__ = Wrecked
    return wrecked


def test_a_run_that_did_nothing_is_refused_on_the_forget_side(remembered):
    model, sets, retain = remembered
    judge = Judge(model, sets, None, seed=0)
    config = EncoderL2Config(lr=1e-9, batch_size=8, steps=3)
    result = run_unlearning(model, sets.forget, retain, config)
    judgement = judge(result.adapter)
    gate = check_gate(judgement, {"mia_max_auc_above_chance": 0.05})  # enabled (reported only by default)
    mia = judgement.membership
    assert mia["raw"]["before"]["auc"] > 0.75  # the base remembers its training images
    assert gate.membership_verdict["forgotten"] is False and gate.membership_verdict["not_over_forgotten"] is True
    failed = {c["name"] for c in gate.failures}
    assert "mia_max_auc_above_chance" in failed and "mia_max_auc_below_chance" not in failed
    assert gate.verdict == "failed" and not gate.publishable and gate.more_steps_may_help


def test_a_model_whose_forget_outputs_are_wrecked_is_flagged_over_forgotten(remembered):
    model, sets, _ = remembered
    gate = check_gate(Judge(model, sets, None, seed=0)(wreck_forget_outputs(model, sets.forget)), {})
    assert gate.membership_verdict["not_over_forgotten"] is False
    assert gate.membership_verdict["forgotten"] is True
    assert {c["name"] for c in gate.failures} >= {"mia_max_auc_below_chance"}
    assert gate.verdict == "failed" and not gate.more_steps_may_help  # more steps would not help: no retry
    message = gate_failure_message(gate, [{"budget": 600, "steps": 600, "verdict": "failed"}])
    assert "Not retried" in message and "smaller step budget" in message and "gate_thresholds" in message


def test_a_gate_with_every_threshold_null_does_not_say_passed(remembered):
    model, sets, _ = remembered
    gate = check_gate(Judge(model, sets, None, seed=0)(model), ALL_OFF)
    assert gate.verdict == "not_evaluated" and gate.verdict != "passed"
    assert {c["status"] for c in gate.checks} <= {"disabled", "not_applicable"}
    assert gate.to_dict()["unevaluated_checks"] == list(DEFAULT_GATE)
    assert gate.membership_verdict is not None  # the attack is reported even when no check is gated


def test_unevaluable_checks_are_named_and_the_verdict_says_so(remembered):
    model, sets, _ = remembered
    sets = EvalSets(forget=sets.forget, retain=sets.retain, reference=sets.reference,
                    reference_labels=["a"] * len(sets.reference), forget_classes=["a"])  # fmt: skip
    only = {**ALL_OFF, "retain_max_psnr_drop": 0.5, "class_max_recognition_over_reference": 0.1,
            "forget_min_cosine_drop": 0.05}  # fmt: skip
    gate = check_gate(Judge(model, sets, None, seed=0)(model), only)  # no feature network
    status = {c["name"]: (c["status"], c["reason"]) for c in gate.checks}
    assert status["retain_max_psnr_drop"][0] == "passed"
    assert status["class_max_recognition_over_reference"] == ("not_evaluated", "the model has no feature network with class names")
    assert status["forget_min_cosine_drop"][0] == "not_evaluated"
    assert gate.verdict == "passed_with_unevaluated_checks" and gate.publishable


def test_without_a_never_seen_reference_the_membership_checks_are_not_evaluated(remembered):
    model, sets, _ = remembered
    judgement = Judge(model, EvalSets(forget=sets.forget, retain=sets.retain, reference=None), None, seed=0)(model)
    gate = check_gate(judgement, {"mia_max_auc_above_chance": 0.05})
    mia = [c for c in gate.checks if c["name"].startswith("mia_")]
    assert [c["status"] for c in mia] == ["not_evaluated", "not_evaluated"] and "never-seen" in mia[0]["reason"]
    assert gate.membership_verdict is None


def test_class_evidence_counts_recognition_per_mask_kind_against_the_visible_only_level():
    targets = class_indices(["a", "b", "c"], ["b", "b", "c", "a"])
    assert targets.tolist() == [1, 1, 2, 0] and class_indices(["a"], ["z"]) is None
    hit = targets[:, None].expand(4, 6)  # (N, M): every mask's output recognised
    miss = (targets[:, None] + 1).expand(4, 6) % 3
    errors = torch.zeros(4, 6, dtype=torch.float64)
    evidence = recognition(MaskedPass(errors, hit, miss), MaskedPass(errors, hit, miss), targets)
    assert evidence["before"] == evidence["after"] == {"random": 1.0, "box_50": 1.0}
    assert evidence["visible_only"] == {"random": 0.0, "box_50": 0.0} and evidence["excess_over_reference"] == 1.0


def test_the_probe_stops_the_run_when_the_verdict_holds_and_not_before(remembered):
    model, sets, retain = remembered
    split = split_sets(sets.forget, sets.retain, sets.reference, ["x"] * 64, [], eval_max=256, seed=0)
    judge = Judge(model, split.probe, None, seed=0)
    config = EncoderL2Config(lr=1e-3, batch_size=8, steps=40)
    holds = Probe(judge, {**ALL_OFF, "forget_min_psnr_drop": -100.0}, every=10)  # holds from the first probe
    result = run_unlearning(model, sets.forget, retain, config, stop=holds.check())
    assert result.steps == 10 < result.budget == 40 and result.stopped_early
    assert holds.steps_to_verdict == 10 and holds.history[0]["done"]
    nothing = Probe(judge, ALL_OFF, every=10)  # a gate that checks nothing is no evidence of being done
    result = run_unlearning(model, sets.forget, retain, config, stop=nothing.check())
    assert result.steps == 40 and not result.stopped_early and nothing.steps_to_verdict is None
    assert [h["step"] for h in nothing.history] == [10, 20, 30]  # never asked after the last step


def test_every_method_honours_the_stop_check_with_the_student_in_eval_mode(remembered):
    model, sets, retain = remembered
    modes = []

    def done(student, step):
        modes.append(student.model.training)
        return step >= 6

    config = EncoderL2Config(lr=1e-3, batch_size=8, steps=20)
    result = run_method("max_loss", model, sets.forget, retain, config, stop=StopCheck(every=3, done=done))
    assert result.steps == 6 and result.budget == 20 and modes == [False, False]


def test_escalation_doubles_the_step_budget():
    config = EncoderL2Config(batch_size=8, steps=50)
    assert escalate(config, config.steps).steps == 100
