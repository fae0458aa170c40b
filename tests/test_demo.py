"""worker/demo.py: every demo family has its checkpoint, a class to forget and a method the API accepts, and the
demo summarises a sampler's report with a sampler's numbers (the full demo runs by hand; README, Demo GAN)."""

import subprocess
import sys

import pytest
import torch

from service.domain.families import method_problem
from service.schemas.unlearn import Method
from worker.demo import ASSETS, FORGET_CLASS, MODELS, _summarise, method_for
from worker.evaluation import EvalSets
from worker.fashion_mnist import CLASS_NAMES
from worker.probe import Split
from worker.report import verification_section
from worker.sampler_eval import SamplerJudge
from worker.sampler_gate import check_sampler_gate
from worker.unlearn import load_checkpoint
from worker.unlearn.checkpoint import read_header
from worker.unlearn.features import load_feature_net

API_DEFAULT_METHOD = Method.encoder_l2.value  # what a request that names no method gets


@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_family_has_its_checkpoint_a_class_and_a_method_the_api_accepts(family):
    assert read_header(ASSETS / f"{family}.safetensors")["family"] == family
    assert FORGET_CLASS[family] in CLASS_NAMES
    assert method_problem(family=family, method=method_for(family) or API_DEFAULT_METHOD) is None
    assert (method_for(family) == "gan_cascade") == (family == "gan")


def test_the_command_offers_every_family():
    shown = subprocess.run([sys.executable, "-m", "service.cli", "demo", "--help"], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "{diffusion,gan,mae}" in shown.stdout


def test_a_sampler_report_reads_as_class_share_frechet_and_nearest_neighbour_membership(capsys):
    """The demo GAN judged against itself, on noise images: the numbers are the report's, the gate fails
    (the class share did not drop), and nothing masked-only (PSNR, cosine, TPR) is asked for."""
    gan, _ = load_checkpoint(ASSETS / "gan.safetensors")
    features = load_feature_net(ASSETS / "classifier.safetensors")
    noise = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # (N, 1, 28, 28)
    sets = EvalSets(forget=noise[:8], retain=noise[8:24], reference=noise[24:], reference_labels=["sandal"] * 16,
                    forget_classes=["sandal"])  # fmt: skip
    judgement = SamplerJudge(gan, sets, features, seed=0, samples=256)(gan)
    gate = check_sampler_gate(judgement, {})
    body = {"job": {"family": "gan"}, "metrics": judgement.metrics, "gate": gate.to_dict(),
            "verification": verification_section(judgement, gate, [], Split(sets, sets, {}))}  # fmt: skip
    _summarise(body)
    lines = capsys.readouterr().out.splitlines()
    after = judgement.metrics["samples"]["after"]["generated"]
    share, frechet, auc = after["forgotten_class_share"], after["retained_frechet"], after["nn_membership_auc"]
    assert lines[0] == (f"[oblivio]   samples   256 generated from fixed codes: forgotten-class share {share:.3f} -> "
                        f"{share:.3f}, retained Fréchet {frechet:.1f} -> {frechet:.1f} (+0%)")  # fmt: skip
    assert lines[1] == "[oblivio]   gate: failed"  # a model that did not change still generates sandals
    assert lines[2].startswith(f"[oblivio]   membership attack (nearest neighbour) AUC {auc:.3f} -> {auc:.3f} (delta ")
    assert len(lines) == 3  # the class share is the metrics line's; no attempt was recorded
