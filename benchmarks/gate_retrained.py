"""The never-trained level of the class-evidence check, measured on a model retrained without the class.

    python -m benchmarks.gate_retrained PATH/retrained.safetensors

A job has no retrained model, so the class-evidence check compares the candidate's recognition rate
with the "visible-only" level (worker/unlearn/class_evidence.py). This measures how far the demo
MAE retrained from scratch without ``trouser`` (same recipe and seed; the retrained-reference
benchmark trains it) sits above that level, on the same sets as ``benchmarks.gate``'s class scenario,
and the raw membership AUC it gives (0.5 expected: to it the forget images are never-seen). The
result is added to ``benchmarks/results/gate.json`` under ``"retrained_reference"``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from benchmarks.gate import ASSETS, EVAL_MAX, RESULTS
from worker.evaluation import Judge
from worker.fashion_mnist import CLASS_NAMES, DEFAULT_SOURCE, read_idx_split
from worker.probe import split_sets
from worker.unlearn import load_checkpoint
from worker.unlearn.features import load_feature_net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("retrained", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "gate.json")
    args = parser.parse_args()
    base, header = load_checkpoint(ASSETS / "mae.safetensors")
    retrained, _ = load_checkpoint(args.retrained)
    features = load_feature_net((ASSETS / "classifier.safetensors").read_bytes())
    seed = header["unlearn_defaults"]["seed"]
    (x_train, y_train), (x_test, y_test) = [
        (torch.from_numpy(x.copy()).unsqueeze(1).float() / 255.0, torch.from_numpy(y.astype("int64")))
        for x, y in (read_idx_split(DEFAULT_SOURCE, s) for s in ("train", "test"))
    ]
    trouser = CLASS_NAMES.index("trouser")
    forget = x_train[y_train == trouser]
    rng = random.Random(seed)  # the class scenario's draws, in its order
    pool = [i for i in range(len(x_test)) if int(y_test[i]) != trouser]
    holdout = sorted(rng.sample(pool, min(EVAL_MAX, len(pool) // 5)))
    reference = sorted(rng.sample([i for i in range(len(x_test)) if int(y_test[i]) == trouser], EVAL_MAX))
    split = split_sets(forget, x_test[holdout], x_test[reference], ["trouser"] * len(reference), ["trouser"],
                       eval_max=EVAL_MAX, seed=seed)  # fmt: skip
    judgement = Judge(base, split.final, features, seed=seed)(retrained)
    row = {"checkpoint": str(args.retrained), "class_evidence": judgement.class_evidence,
           "membership_raw": judgement.membership["raw"]["after"]["auc"],
           "membership_n": [judgement.membership["n_forget"], judgement.membership["n_never_seen"]]}  # fmt: skip
    print(json.dumps(row, indent=2))
    out = json.loads(args.out.read_text())
    out["retrained_reference"] = row
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
