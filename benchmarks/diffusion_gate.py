"""The diffusion family's gate defaults, checked on two datasets against models retrained without a class.

    python -m benchmarks.diffusion_gate [--dataset fashion-mnist --dataset mnist-5k]

``DiffusionAdapter.gate_defaults`` lower the MAE-measured forgetting thresholds for this family
(README, "Diffusion family"). They were set from the Fashion-MNIST demo model; this checks that they
hold as a rule and not for one dataset. Per dataset (benchmarks/datasets.py; forget its class:
Fashion-MNIST ``trouser``, MNIST-5k digit ``3``), with the demo diffusion recipe
(benchmarks/reference_models.py: base and retrained-without-the-class, cached in var/reference/):

- the sets a job judges on: up to 256 training images of the class (forget), never-seen test
  images of it (reference), test images of the other classes (retain hold-out);
- three candidates judged against the base by the worker's own Judge and gate (family defaults):
  the base unchanged (must fail the forgetting checks), the retrained model (should pass them: it
  is what unlearning aims at) and retain-free encoder-L2 with the demo header's settings on the
  rest of the test split (the proxy).

The feature network (cosine, class evidence) is the demo's Fashion-MNIST classifier, so on MNIST
those checks are not evaluated and the PSNR check decides. Writes benchmarks/results/diffusion_gate.json.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.common import DEMO, RESULTS, device_info
from benchmarks.datasets import DATASETS
from benchmarks.reference_models import load_or_train
from worker.evaluation import EvalSets, Judge
from worker.gate import check_gate, gate_thresholds
from worker.train_demo import DEMO_DIFFUSION_UNLEARN
from worker.unlearn import run_unlearning
from worker.unlearn.features import load_feature_net

SEED = 0
N_EVAL = 256
FORGETTING = ("forget_min_psnr_drop", "forget_min_cosine_drop", "class_max_recognition_over_reference")


def measure(name: str) -> dict:
    data = DATASETS[name]()
    base, retrained = load_or_train(data, "base-diffusion"), load_or_train(data, "retrained-diffusion")
    features = load_feature_net(DEMO / "classifier.safetensors") if name == "fashion-mnist" else None
    label = data.class_names[data.forget_class]
    gen = torch.Generator().manual_seed(SEED)

    def pick(x, n):  # (N, 1, 28, 28) uint8 -> a seeded draw of at most n images in [0, 1]
        return x[torch.randperm(len(x), generator=gen)[:n]].float() / 255.0

    in_class = data.test_y == data.forget_class
    others = data.test_x[~in_class][torch.randperm(int((~in_class).sum()), generator=gen)]
    holdout, proxy = others[:N_EVAL].float() / 255.0, others[N_EVAL:].float() / 255.0
    forget = pick(data.train_x[data.train_y == data.forget_class], 2000)
    reference = pick(data.test_x[in_class], N_EVAL)
    sets = EvalSets(forget=forget[:N_EVAL], retain=holdout, reference=reference, reference_labels=[label] * len(reference),
                    forget_classes=[label], forget_labels=[label] * min(N_EVAL, len(forget)))  # fmt: skip
    judge = Judge(base, sets, features, seed=SEED)
    started = time.perf_counter()
    unlearned = run_unlearning(base, forget, proxy, DEMO_DIFFUSION_UNLEARN, retain_is_proxy=True)
    unlearn_s = time.perf_counter() - started
    rows = {}
    for row, candidate in (("unchanged", base), ("retrained", retrained), ("encoder_l2", unlearned.adapter)):
        gate = check_gate(judge(candidate), gate_thresholds("diffusion", None))
        rows[row] = {"verdict": gate.verdict,
                     "checks": {c["name"]: {"value": c["value"], "threshold": c["threshold"], "status": c["status"]}
                                for c in gate.checks}}  # fmt: skip
        forgetting = {k: rows[row]["checks"][k]["status"] for k in FORGETTING}
        print(f"[{name}] {row}: {gate.verdict}; forgetting checks {forgetting}", flush=True)
    return {"forget_class": label, "counts": {"forget": len(forget), "reference": len(reference),
                                              "holdout": len(holdout), "proxy": len(proxy)},
            "encoder_l2": {"config": DEMO_DIFFUSION_UNLEARN.to_dict(), "seconds": round(unlearn_s, 1)},
            "feature_net": "demo classifier" if features is not None else None, "candidates": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diffusion_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), help="default: every dataset")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = RESULTS / "diffusion_gate.json"
    earlier = json.loads(path.read_text())["datasets"] if path.is_file() else {}  # datasets not re-run stay
    body = {"device": device_info("cpu"), "gate_defaults": gate_thresholds("diffusion", None),
            "datasets": {**earlier, **{name: measure(name) for name in args.dataset or sorted(DATASETS)}}}
    path.write_text(json.dumps(body, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
