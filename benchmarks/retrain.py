"""Forgetting one class: our unlearning run vs retraining the base from scratch without that class.

    python -m benchmarks.retrain [--retrain-steps 20] [--unlearn-steps N] [--threads 1]

Ours: ``run_unlearning`` with the demo model's own settings (header ``unlearn_defaults``: 600 steps
of 64 rows) and cached teacher targets, forgetting Fashion-MNIST class 1 in retain-free mode (proxy:
the test split minus that class). The one-off cost of building the version's teacher cache is
reported next to it (the worker builds it after publishing the previous version, off the job's path).

Retraining: the base's own recipe (``worker.train_demo.DEMO_RECIPE`` through
``worker.unlearn.families.mae.train.train_mae``: 4 epochs of batches of 256) on the 54,000 training images
outside the class. Running it all takes most of an hour on this machine, so ``--retrain-steps``
steps of that recipe (same model, batch, optimizer and code) are timed and the mean step time is
multiplied by the recipe's step count; the JSON says so (``extrapolated``). Data loading is
excluded from both sides.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.common import DEMO, FASHION_MNIST, device_info, write_result
from benchmarks.engine import FORGET_CLASS, load_data
from worker.fashion_mnist import read_idx_split
from worker.train_demo import DEMO_MAE, DEMO_RECIPE
from worker.unlearn import EncoderL2Config, create_adapter, load_checkpoint, run_unlearning
from worker.unlearn.runtime import configure_cpu_threads
from worker.unlearn.teacher_cache import BankSpec, CacheKey, build_cache
from worker.unlearn.families.mae.train import MAETrainConfig, train_mae


def retrain_step_seconds(images: torch.Tensor, base_config: dict, steps: int) -> float:
    """Seconds per step of the base recipe from scratch, timed over ``steps`` steps (one short epoch)."""
    recipe = MAETrainConfig(**{**DEMO_RECIPE.to_dict(), "epochs": 1})
    subset = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: steps * recipe.batch_size]]
    adapter = create_adapter("mae", base_config, seed=0)  # fresh initialisation
    result = train_mae(adapter, subset, recipe)
    return result.seconds / result.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrain", description=__doc__.split("\n")[0])
    parser.add_argument("--retrain-steps", type=int, default=20, help="timed steps of the retraining recipe")
    parser.add_argument("--unlearn-steps", type=int, default=None, help="steps of our run (default: the model's own)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = CPUs available)")
    args = parser.parse_args(argv)
    threads = configure_cpu_threads(args.threads or None)

    base, header = load_checkpoint(DEMO / "mae.safetensors")
    config = EncoderL2Config.from_header(header["unlearn_defaults"])
    if args.unlearn_steps:
        config = config.replace(steps=args.unlearn_steps)
    forget, proxy = load_data()

    spec = BankSpec()
    started = time.perf_counter()
    cache = build_cache(base, proxy, [str(i) for i in range(len(proxy))], spec, CacheKey.for_bank("demo", "proxy", spec))
    cache_s = time.perf_counter() - started
    started = time.perf_counter()
    result = run_unlearning(base, forget, proxy, config, targets=cache)
    unlearn_s = time.perf_counter() - started
    print(f"unlearning: {result.steps} steps in {unlearn_s:.1f} s (+ {cache_s:.1f} s to build the teacher cache)")

    images, labels = read_idx_split(FASHION_MNIST, "train")
    keep = torch.from_numpy(labels.astype("int64")) != FORGET_CLASS
    train = torch.from_numpy(images.copy()).unsqueeze(1)[keep]  # (54000, 1, 28, 28) uint8
    base_config = {**DEMO_MAE, "pixel_mean": list(base.config.pixel_mean), "pixel_std": list(base.config.pixel_std)}
    step_s = retrain_step_seconds(train, base_config, args.retrain_steps)
    recipe_steps = DEMO_RECIPE.epochs * (len(train) // DEMO_RECIPE.batch_size)
    retrain_s = step_s * recipe_steps
    print(f"retraining: {step_s * 1e3:.0f} ms/step x {recipe_steps} steps = {retrain_s:.0f} s (extrapolated)")

    result_json = {
        "device": device_info("cpu"),
        "threads": threads,
        "forget_class": FORGET_CLASS,
        "unlearn": {"steps": result.steps, "batch_size": config.batch_size, "seconds": round(unlearn_s, 2),
                    "teacher_cache_build_s": round(cache_s, 2), "mode": "retain_free, cached teacher targets"},
        "retrain": {
            "recipe": DEMO_RECIPE.to_dict(), "images": len(train), "recipe_steps": recipe_steps,
            "timed_steps": args.retrain_steps, "step_ms": round(step_s * 1e3, 2), "seconds": round(retrain_s, 1),
            "extrapolated": f"{args.retrain_steps} of {recipe_steps} steps timed; seconds = mean step time x {recipe_steps}",
            "base_header_training_seconds": header.get("training", {}).get("seconds"),
        },
        "ratios": {
            "retrain_over_unlearn": round(retrain_s / unlearn_s, 1),
            "retrain_over_unlearn_with_cache_build": round(retrain_s / (unlearn_s + cache_s), 1),
        },
        "targets": {"retrain_over_unlearn_min": 500},
    }
    path = write_result("retrain", result_json)
    print(f"retrain/unlearn {result_json['ratios']['retrain_over_unlearn']} "
          f"({result_json['ratios']['retrain_over_unlearn_with_cache_build']} with the cache build); wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
