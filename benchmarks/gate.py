"""Measure what the publish gate sees on the demo model, to choose its default thresholds.

    python -m benchmarks.gate [--steps 600]

Runs the demo job (retain-free encoder-L2 with the checkpoint's ``unlearn_defaults``) on the demo
MAE for two requests a user would file: one whole class (``trouser``) and 10 single training
images of mixed classes. The sets mirror the pipeline (worker/inputs.py): the retain side is the
proxy (test split) without the forget classes, a fifth of it (at most 256) held out for evaluation,
the reference is proxy images of the forget samples' classes. For each scenario it writes every
quantity the gate checks, and the verdict under the current defaults, to
``benchmarks/results/gate.json``. README "Publish gate" explains the defaults chosen from them.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from worker.evaluation import DEFAULT_GATE, check_gate, evaluate_sets
from worker.fashion_mnist import DEFAULT_SOURCE, read_idx_split
from worker.unlearn import EncoderL2Config, load_checkpoint, run_unlearning
from worker.unlearn.features import load_feature_net

ASSETS = Path(__file__).parents[1] / "worker" / "assets" / "demo"
RESULTS = Path(__file__).parent / "results"
CLASS_NAMES = ["t_shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
EVAL_MAX, RETAIN_MAX = 256, 10_000


def scenario(forget_ids, forget_classes, train, test, base, features, config):
    """One job on the pipeline's sets (whole ``forget_classes`` leave the retain side); the gate's view of it."""
    (x_train, y_train), (x_test, y_test) = train, test
    forget = x_train[forget_ids]
    labels = set(y_train[forget_ids].tolist())
    rng = random.Random(config.seed)
    pool = [i for i in range(len(x_test)) if int(y_test[i]) not in forget_classes]
    holdout = sorted(rng.sample(pool, min(EVAL_MAX, len(pool) // 5)))
    retain = sorted(set(pool) - set(holdout))
    if len(retain) > RETAIN_MAX:
        retain = sorted(rng.sample(retain, RETAIN_MAX))
    reference_pool = [i for i in range(len(x_test)) if int(y_test[i]) in labels]
    reference = sorted(rng.sample(reference_pool, min(EVAL_MAX, len(reference_pool))))

    started = time.perf_counter()
    result = run_unlearning(base, forget, x_test[retain], config)
    unlearn_s = time.perf_counter() - started
    g = torch.Generator().manual_seed(config.seed)
    forget_eval = forget[torch.randperm(len(forget), generator=g)[:EVAL_MAX]]
    sets = {"forget": forget_eval, "retain": x_test[holdout], "reference": x_test[reference]}
    metrics = evaluate_sets(base, result.adapter, sets, features, seed=config.seed)
    gate = check_gate(metrics, {})
    return {
        "forget_samples": len(forget_ids),
        "retain_images": len(retain),
        "steps": result.steps,
        "unlearn_s": round(unlearn_s, 1),
        "final_losses": result.history[-1].losses,
        "gate": {c["name"]: {"value": c["value"], "threshold": c["threshold"], "passed": c["passed"]}
                 for c in gate.checks},
        "metrics": metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the model's own)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gate.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    base, header = load_checkpoint(ASSETS / "mae.safetensors")
    features = load_feature_net((ASSETS / "classifier.safetensors").read_bytes())
    config = EncoderL2Config.from_header(header["unlearn_defaults"])
    if args.steps:
        config = config.replace(steps=args.steps)
    splits = {}
    for split in ("train", "test"):
        images, labels = read_idx_split(DEFAULT_SOURCE, split)
        splits[split] = (torch.from_numpy(images.copy()).unsqueeze(1).float() / 255.0, torch.from_numpy(labels.astype("int64")))
    y_train = splits["train"][1]
    trouser = CLASS_NAMES.index("trouser")
    class_ids = torch.nonzero(y_train == trouser).flatten().tolist()
    samples = random.Random(7).sample(range(len(y_train)), 10)
    out = {"device": "cpu", "machine": platform.machine(), "threads": torch.get_num_threads(),
           "config": config.to_dict(), "defaults": DEFAULT_GATE, "scenarios": {}}
    for name, ids, classes in (("class", class_ids, {trouser}), ("samples", samples, set())):
        print(f"{name}: forgetting {len(ids)} images ...", flush=True)
        out["scenarios"][name] = scenario(ids, classes, splits["train"], splits["test"], base, features, config)
        for check, v in out["scenarios"][name]["gate"].items():
            print(f"  {check:36s} {v['value']!s:>10} (threshold {v['threshold']}, {'ok' if v['passed'] else 'FAIL'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
