"""The paper's comparison (its Table 1) on the demo model: every method, same data, same metrics.

    python -m benchmarks.quality [--family mae|diffusion] [--steps 200] [--eval 300]

Two requests against a committed Fashion-MNIST demo model (``worker/assets/demo/<family>.safetensors``):
forget whole classes (the MAE: trouser and bag; the diffusion inpainter: trouser, the class its
retrained reference was trained without), and separately 20 single training samples. Each is run with every
method from the same base and seed, with the model's recommended settings (its header's
``unlearn_defaults``: Adam, lr 1e-3, alpha 0.25, batch 64) except the step count, cut to
``--steps`` per method (the demo recommends 600) so the whole comparison fits in about a quarter of
an hour on 2 CPU cores. Rows:

- Original: the base model;
- the four baselines of ALGORITHM.md §3, trained with real retain data (as in the paper);
- encoder-L2 with real retain data (``with_retain``) and retain-free (proxy images);
- gradient surgery (seed 002) retain-free, with the encoder-L2 forget objective;
- Retrained (class scenario, where the family has one): the same recipe and seed trained without
  the forgotten class (:mod:`benchmarks.reference_models`, cached under ``var/reference/``) — what
  unlearning should come close to.

Data is the demo's: the PNG export of Fashion-MNIST (:mod:`worker.fashion_mnist`, the Debian
package ``dataset-fashion-mnist``) read through its manifests with sha256 checks. Sets:

- D_F (forget, evaluated): up to ``--eval`` of the forget samples themselves (the training images
  the request names, as the service's report evaluates them);
- D_R (retain, evaluated): ``--eval`` test-split images of the retained classes, held out of
  everything used for training (never in the proxy set);
- real retain data: training images outside the forget set (4000 drawn); proxy: the test split
  minus the forget classes minus D_R.

Metrics (ALGORITHM.md §5; :func:`worker.unlearn.metrics.evaluate`) on centre boxes of a quarter and
half of the side (the paper's 4x4 and 8x8 patch crops) and on random masking: PSNR and SSIM in the
hidden region, cosine similarity in the demo classifier's feature space, and the Fréchet distance
between output and original features in that space (not "FID": no Inception network).

Writes ``benchmarks/results/quality[-<family>].json``, ``.md`` (tables in the layout of the paper's
Table 1) and ``quality[-<family>]_<scenario>.png`` (no family part for the MAE) (retain-side outputs of every row; forget-side *fills only*
after unlearning: the generated box with the visible pixels greyed out, never a forget original).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from benchmarks.datasets import fashion_mnist
from benchmarks.quality_report import render_figure, render_markdown
from benchmarks.reference_models import load_or_train
from service.config import get_settings
from worker.fashion_mnist import CLASS_NAMES, export
from worker.unlearn import load_checkpoint
from worker.unlearn.config import EncoderL2Config
from worker.unlearn.data import load_images, read_manifest
from worker.unlearn.features import load_feature_net
from worker.unlearn.methods import params_to_dict, parse_method_config, run_method
from worker.unlearn.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "worker" / "assets" / "demo"
RESULTS = ROOT / "benchmarks" / "results"
# family -> the classes forgotten whole, and the cached retrained reference (None: no Retrained row)
FAMILIES = {"mae": (("trouser", "bag"), None), "diffusion": (("trouser",), "retrained-diffusion")}
N_SAMPLES = 20
N_RETAIN = 4000
SEED = 0

# (row label, method, retain source, method params)
ROWS = (
    ("Max Loss", "max_loss", "real", {}),
    ("Noisy Label", "noisy_label", "real", {}),
    ("Retain Label", "retain_label", "real", {}),
    ("Random Encoder", "random_encoder", "real", {}),
    ("Encoder-L2 (real retain)", "encoder_l2", "real", {}),
    ("Encoder-L2 (retain-free, proxy)", "encoder_l2", "proxy", {}),
    ("Gradient surgery (retain-free, proxy)", "gradient_surgery", "proxy", {"forget_objective": "encoder_l2"}),
)


def load(records, shape) -> torch.Tensor:
    return load_images(records, image_shape=shape)  # (N, C, H, W) in [0, 1], sha256-verified


def scenarios(train: list, test: list, n_eval: int, classes: tuple[str, ...]) -> dict[str, dict]:
    """Record lists per scenario: forget, real retain, proxy, and the two evaluated sets."""
    rng = random.Random(SEED)
    out = {}
    forget = [r for r in train if r.class_label in classes]
    kept_test = [r for r in test if r.class_label not in classes]
    held = rng.sample(kept_test, n_eval)
    held_keys = {r.sample_key for r in held}
    out["classes"] = {
        "title": f"Forget {'one class' if len(classes) == 1 else f'{len(classes)} classes'} ({', '.join(classes)})",
        "forget": forget,
        "retain": rng.sample([r for r in train if r.class_label not in classes], N_RETAIN),
        "proxy": [r for r in kept_test if r.sample_key not in held_keys],
        "eval_forget": rng.sample(forget, n_eval),
        "eval_retain": held,
    }
    samples = rng.sample(train, N_SAMPLES)
    sample_keys = {r.sample_key for r in samples}
    held = rng.sample(test, n_eval)
    held_keys = {r.sample_key for r in held}
    out["samples"] = {
        "title": f"Forget {N_SAMPLES} single training samples (all classes)",
        "forget": samples,
        "retain": rng.sample([r for r in train if r.sample_key not in sample_keys], N_RETAIN),
        "proxy": [r for r in test if r.sample_key not in held_keys],
        "eval_forget": samples,
        "eval_retain": held,
    }
    return out


def run_scenario(name: str, spec: dict, base, features, defaults: dict, steps: int, *, prefix: str = "quality",
                 retrained=None) -> dict:
    shape = base.image_shape
    data = {k: load(spec[k], shape) for k in ("forget", "retain", "proxy", "eval_forget", "eval_retain")}
    sets = {"forget": data["eval_forget"], "retain": data["eval_retain"]}
    rows = {"Original": {"method": None, "retain_source": None, "params": {}, "train_s": 0.0,
                         "metrics": {s: evaluate(base, x, features, seed=SEED) for s, x in sets.items()}}}
    outputs = {"Original": base}
    for label, method, source, params in ROWS:
        config, method_params = parse_method_config(method, {**defaults, "steps": steps, "params": params})
        started = time.perf_counter()
        retain = data["retain"] if source == "real" else data["proxy"]  # (N_r, C, H, W)
        result = run_method(method, base, data["forget"], retain, config, params=method_params)
        seconds = time.perf_counter() - started
        rows[label] = {
            "method": method, "retain_source": source, "params": params_to_dict(method_params),
            "train_s": round(seconds, 1), "steps": result.steps,
            "final_losses": {k: round(v, 5) for k, v in result.history[-1].losses.items()},
            "mean_losses": {k: round(sum(h.losses[k] for h in result.history) / result.steps, 5)
                            for k in result.history[-1].losses},  # gradient surgery: "conflict" = share of steps projected
            "metrics": {s: evaluate(result.adapter, x, features, seed=SEED) for s, x in sets.items()},
        }
        outputs[label] = result.adapter
        print(f"[{name}] {label}: {seconds:.0f} s, final losses {rows[label]['final_losses']}", flush=True)
    if retrained is not None:  # the target: what a model that never saw the class does
        rows["Retrained (reference)"] = {"method": None, "retain_source": None, "params": {}, "train_s": None,
                                         "metrics": {s: evaluate(retrained, x, features, seed=SEED) for s, x in sets.items()}}
        outputs["Retrained (reference)"] = retrained
    figure = RESULTS / f"{prefix}_{name}.png"
    render_figure(figure, outputs, retain=data["eval_retain"][:8], forget=data["eval_forget"][:8], title=spec["title"])
    return {
        "title": spec["title"],
        "counts": {k: len(spec[k]) for k in ("forget", "retain", "proxy", "eval_forget", "eval_retain")},
        "figure": figure.name,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="mae", help="which demo model (default: mae)")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps per method (default 200; the model's own: its header)")
    parser.add_argument("--eval", type=int, default=300, help="images per evaluated set (D_F of a class, D_R)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (more threads spin-wait on a shared CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data_dir = get_settings().data_roots[0] / "fashion-mnist"
    manifests = export(data_dir)  # the demo's export; a no-op once done
    train, test = read_manifest(manifests["train"]), read_manifest(manifests["test"])
    classes, reference = FAMILIES[args.family]
    prefix = "quality" if args.family == "mae" else f"quality-{args.family}"
    base, header = load_checkpoint(DEMO / f"{args.family}.safetensors")
    retrained = load_or_train(fashion_mnist(), reference) if reference else None  # trained once, cached
    features = load_feature_net(DEMO / "classifier.safetensors")
    defaults = EncoderL2Config.from_header(header["unlearn_defaults"]).to_dict()  # fails early on a malformed header
    results = {}
    for name, spec in scenarios(train, test, args.eval, classes).items():
        results[name] = run_scenario(name, spec, base, features, defaults, args.steps, prefix=prefix,
                                     retrained=retrained if name == "classes" else None)
    wall = time.perf_counter() - started
    body = {
        "command": "python -m benchmarks.quality" + (f" --family {args.family}" if args.family != "mae" else "")
                   + (f" --steps {args.steps}" if args.steps != 200 else ""),
        "wall_s": round(wall, 1),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "torch": torch.__version__,
                    "threads": args.threads},
        "model": {"checkpoint": f"worker/assets/demo/{args.family}.safetensors", "name": header.get("name"),
                  "family": args.family},
        "retrained": None if reference is None else f"var/reference/fashion-mnist/{reference}.safetensors",
        "features": "worker/assets/demo/classifier.safetensors (penultimate layer)",
        "config": {**defaults, "steps": args.steps},
        "recommended_steps": defaults["steps"],
        "forget_classes": list(classes),
        "class_names": list(CLASS_NAMES),
        "seed": SEED,
        "scenarios": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{prefix}.json").write_text(json.dumps(body, indent=1) + "\n")
    (RESULTS / f"{prefix}.md").write_text(render_markdown(body))
    print(f"wrote {RESULTS / prefix}.json, {prefix}.md and the figures in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
