"""Measure what the publish gate sees on the demo model, to choose its default thresholds.

    python -m benchmarks.gate [--steps 600]

Runs the demo job (retain-free encoder-L2 with the checkpoint's ``unlearn_defaults``) on the demo
MAE for two requests a user would file: one whole class (``trouser``) and 8 single training images
of mixed classes. The sets mirror the pipeline (worker/inputs.py, worker/probe.py): the retain side
is the proxy (test split) without the forget classes, a fifth of it (at most 256) held out for
evaluation; the never-seen reference is proxy images of the forget samples' classes; the probe split
is carved out of them as a job does. Each run goes the full budget while the probe is asked every K
steps as in a job, so one run gives both numbers: the gate's view at the fixed budget, and the step
at which the probe verdict first held (steps-to-verdict) with the gate's view of the candidate at
that step. Everything goes to ``benchmarks/results/gate.json``; README "Publish gate" explains the
defaults chosen from it.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import time
from collections import Counter
from pathlib import Path

import torch

from worker.evaluation import Judge
from worker.fashion_mnist import CLASS_NAMES, DEFAULT_SOURCE, read_idx_split
from worker.gate import DEFAULT_GATE, check_gate
from worker.inputs import draw_in_mix
from worker.probe import Probe, probe_every, split_sets
from worker.unlearn import EncoderL2Config, StopCheck, load_checkpoint, run_unlearning
from worker.unlearn.features import load_feature_net

ASSETS = Path(__file__).parents[1] / "worker" / "assets" / "demo"
RESULTS = Path(__file__).parent / "results"
EVAL_MAX, RETAIN_MAX = 256, 10_000


def gate_view(judge: Judge, candidate) -> dict:
    judgement = judge(candidate)
    gate = check_gate(judgement, {})
    return {"verdict": gate.verdict, "membership_verdict": gate.membership_verdict,
            "checks": {c["name"]: {k: c.get(k) for k in ("value", "threshold", "status")} for c in gate.checks},
            "membership": {k: v for k, v in (judgement.membership or {}).items() if k != "masks"},
            "class_evidence": judgement.class_evidence, "metrics": judgement.metrics}  # fmt: skip


def scenario(forget_ids, forget_classes, train, test, base, features, config):
    """One job on the pipeline's sets (whole ``forget_classes`` leave the retain side)."""
    (x_train, y_train), (x_test, y_test) = train, test
    forget = x_train[forget_ids]
    labels = set(y_train[forget_ids].tolist())
    rng = random.Random(config.seed)
    pool = [i for i in range(len(x_test)) if int(y_test[i]) not in forget_classes]
    holdout = sorted(rng.sample(pool, min(EVAL_MAX, len(pool) // 5)))
    retain = sorted(set(pool) - set(holdout))
    if len(retain) > RETAIN_MAX:
        retain = sorted(rng.sample(retain, RETAIN_MAX))
    by_label = {}  # never-seen images of the forget samples' classes, drawn in their mix as the worker does
    for i in range(len(x_test)):
        if int(y_test[i]) in labels:
            by_label.setdefault(int(y_test[i]), []).append(i)
    reference = sorted(draw_in_mix(by_label, Counter(y_train[forget_ids].tolist()), EVAL_MAX, rng))
    names = [CLASS_NAMES[int(y_test[i])] for i in reference]
    split = split_sets(forget, x_test[holdout], x_test[reference], names, [CLASS_NAMES[c] for c in forget_classes],
                       eval_max=EVAL_MAX, seed=config.seed,
                       forget_labels=[CLASS_NAMES[int(y)] for y in y_train[forget_ids]])  # fmt: skip
    final = Judge(base, split.final, features, seed=config.seed)
    budget = config.steps
    probe = Probe(Judge(base, split.probe, features, seed=config.seed), {}, every=probe_every(budget))
    at_verdict = {}

    def record(student, step: int) -> bool:  # probe as a job does, but never stop: the fixed budget is measured too
        if probe.done(student, step) and not at_verdict:
            at_verdict.update(step=step, **gate_view(final, copy.deepcopy(student)))
        return False

    started = time.perf_counter()
    result = run_unlearning(base, forget, x_test[retain], config, stop=StopCheck(probe.every, record))
    seconds = time.perf_counter() - started
    return {
        "forget_samples": len(forget_ids), "retain_images": len(retain), "budget": budget,
        "probe_every": probe.every, "probe_disjoint": split.disjoint, "unlearn_and_probe_s": round(seconds, 1),
        "steps_to_verdict": probe.steps_to_verdict, "probes": probe.history,
        "at_budget": {"steps": result.steps, "final_losses": result.history[-1].losses,
                      **gate_view(final, result.adapter)},
        "at_verdict": at_verdict or None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the model's own)")
    parser.add_argument("--samples", type=int, default=8, help="single samples in the second scenario")
    parser.add_argument("--scenarios", nargs="+", choices=["class", "samples"], default=["class", "samples"])
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
    samples = random.Random(7).sample(range(len(y_train)), args.samples)
    out = {"device": "cpu", "machine": platform.machine(), "threads": torch.get_num_threads(),
           "config": config.to_dict(), "defaults": DEFAULT_GATE, "scenarios": {}}
    scenarios = {"class": (class_ids, [trouser]), "samples": (samples, [])}
    for name in args.scenarios:
        ids, classes = scenarios[name]
        print(f"{name}: forgetting {len(ids)} images ...", flush=True)
        row = out["scenarios"][name] = scenario(ids, classes, splits["train"], splits["test"], base, features, config)
        print(f"  steps to verdict {row['steps_to_verdict']} of {row['budget']}", flush=True)
        for check, v in row["at_budget"]["checks"].items():
            print(f"  {check:38s} {v['value']!s:>10} (threshold {v['threshold']}, {v['status']})", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
