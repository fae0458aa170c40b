"""GAN unlearning: cascaded unlearning (gan_cascade) vs retraining the demo GAN without the forget set.

    python -m benchmarks.gan_retrain [--threads 1] [--work DIR]            # everything, in one process
    python -m benchmarks.gan_retrain --stage retrain --kind class --work DIR  # one retraining only (to run in parallel)

Two requests against the demo GAN (worker/assets/demo/gan.safetensors, trained by
``python -m worker.train_demo --family gan``): **items**, 64 random training images (seed 0), and
**class**, every training image of class ``sandal``. For each: the retrained reference is the
demo's own recipe (``worker.train_demo.DEMO_GAN`` / ``DEMO_GAN_RECIPE``, seed 0, full length, not
extrapolated) on the 60,000 training images minus the forget set; the cascade is ``gan_cascade``
with the family's recommended settings (retain-free: it reads the forget images only). Wall and CPU
seconds are recorded for both (the machine may be shared: CPU seconds are the steadier ratio).

All three models (base, cascade, retrained) are judged like a job judges a sampler
(worker/sampler_eval.py, 2,048 fixed latent codes): forgotten-class share, nearest-neighbour
membership AUC (up to 256 forget images vs 256 never-seen test images of the same classes) and the
retained classes' Fréchet distance (classifier features, samples vs 512 test images of the other
classes). Writes benchmarks/results/gan_retrain.json. The paper's speed-ups (185x on MNIST, 284x on
CIFAR-10) are recorded beside ours.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import DEMO, FASHION_MNIST, device_info, write_result
from worker.evaluation import EvalSets
from worker.fashion_mnist import CLASS_NAMES, read_idx_split
from worker.sampler_eval import SamplerJudge
from worker.sampler_gate import check_sampler_gate
from worker.train_demo import DEMO_GAN, DEMO_GAN_RECIPE
from worker.unlearn import create_adapter, load_checkpoint, save_checkpoint
from worker.unlearn.config import recommended_config
from worker.unlearn.families.gan import train_gan
from worker.unlearn.features import load_feature_net
from worker.unlearn.methods import run_method

FORGET_CLASS = "sandal"
N_ITEMS = 64
EVAL = 256
PAPER = {"mnist_speedup": 185, "cifar10_speedup": 284, "note": "Sun et al. 2023, best case of item/class unlearning"}


def forget_rows(kind: str, labels: torch.Tensor) -> torch.Tensor:
    if kind == "items":
        return torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:N_ITEMS].sort().values
    return (labels == CLASS_NAMES.index(FORGET_CLASS)).nonzero().squeeze(1)


def retrain(kind: str, images: torch.Tensor, labels: torch.Tensor, work: Path) -> dict:
    keep = torch.ones(len(images), dtype=torch.bool)
    keep[forget_rows(kind, labels)] = False
    adapter = create_adapter("gan", DEMO_GAN, seed=0)
    cpu, wall = time.process_time(), time.perf_counter()
    train_gan(adapter, images[keep], DEMO_GAN_RECIPE)
    timing = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
              "images": int(keep.sum()), "steps": DEMO_GAN_RECIPE.steps}  # fmt: skip
    save_checkpoint(adapter, work / f"retrained_{kind}.safetensors", {"retrained_without": kind, "timing": timing})
    print(f"retrained ({kind}): {timing}", flush=True)
    return timing


def compare(kind: str, base, images, labels, test_images, test_labels, features, work: Path) -> dict:
    rows = forget_rows(kind, labels)
    forget = images[rows].float() / 255.0
    forget_classes = sorted({CLASS_NAMES[i] for i in labels[rows].tolist()})
    gen = torch.Generator().manual_seed(1)
    never_pool = torch.isin(test_labels, labels[rows].unique()).nonzero().squeeze(1)
    never = test_images[never_pool[torch.randperm(len(never_pool), generator=gen)[:EVAL]]].float() / 255.0
    whole = [FORGET_CLASS] if kind == "class" else []
    other = (test_labels != CLASS_NAMES.index(FORGET_CLASS)).nonzero().squeeze(1) if whole else torch.arange(len(test_labels))
    holdout = test_images[other[torch.randperm(len(other), generator=gen)[: 2 * EVAL]]].float() / 255.0
    eval_forget = forget[torch.randperm(len(forget), generator=gen)[:EVAL]]
    sets = EvalSets(forget=eval_forget, retain=holdout, reference=never, forget_classes=whole)
    judge = SamplerJudge(base, sets, features, seed=0)

    config = recommended_config("gan", base.config.to_dict())
    cpu, wall = time.process_time(), time.perf_counter()
    result = run_method("gan_cascade", base, forget, forget[:0], config)
    cascade_time = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                    "steps": result.steps}  # fmt: skip
    retrained, header = load_checkpoint(work / f"retrained_{kind}.safetensors")
    judged = {"cascade": judge(result.adapter), "retrained": judge(retrained)}
    row = lambda numbers: {k: numbers.get(k) for k in  # noqa: E731
                           ("forgotten_class_share", "nn_membership_auc", "retained_frechet", "n_samples")}  # fmt: skip
    out = {
        "forget_images": len(forget), "forget_classes": forget_classes, "class_forgotten_whole": whole,
        "config": config.to_dict(), "cascade_plan": getattr(result, "plan_summary", None),
        "base": row(judged["cascade"].metrics["samples"]["before"]["generated"]),
        "cascade": {**row(judged["cascade"].metrics["samples"]["after"]["generated"]), **cascade_time},
        "retrained": {**row(judged["retrained"].metrics["samples"]["after"]["generated"]), **header["timing"]},
        "gate": {name: check_sampler_gate(j, {}).to_dict()["checks"] for name, j in judged.items()},
    }
    out["speedup_wall"] = round(header["timing"]["wall_s"] / cascade_time["wall_s"], 1)
    out["speedup_cpu"] = round(header["timing"]["cpu_s"] / cascade_time["cpu_s"], 1)
    print(f"{kind}: {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gan_retrain", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stage", choices=("all", "retrain", "compare"), default="all")
    parser.add_argument("--kind", choices=("items", "class"), default=None, help="one request kind only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/oblivio-gan-retrain"), help="retrained checkpoints")
    parser.add_argument("--base", type=Path, default=DEMO / "gan.safetensors")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    images, labels = (torch.from_numpy(a.copy()) for a in read_idx_split(FASHION_MNIST, "train"))
    images, labels = images.unsqueeze(1), labels.long()
    kinds = [args.kind] if args.kind else ["items", "class"]
    if args.stage in ("all", "retrain"):
        for kind in kinds:
            retrain(kind, images, labels, args.work)
    if args.stage == "retrain":
        return 0
    test_images, test_labels = (torch.from_numpy(a.copy()) for a in read_idx_split(FASHION_MNIST, "test"))
    test_images, test_labels = test_images.unsqueeze(1), test_labels.long()
    base, header = load_checkpoint(args.base)
    features = load_feature_net(DEMO / "classifier.safetensors")
    results = {kind: compare(kind, base, images, labels, test_images, test_labels, features, args.work) for kind in kinds}
    write_result("gan_retrain", {"device": device_info(), "base": {"path": str(args.base.name), "training": header.get("training")},
                                 "paper": PAPER, "requests": results})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
