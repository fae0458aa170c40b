"""Markdown tables of benchmarks/retrained.py: one per dataset, a row per model, both masking tasks."""

from __future__ import annotations

TASK_NAMES = {"random": "random 75 %", "box_50": "centre box 1/2"}


def _row(name: str, row: dict, tasks: list[str]) -> str:
    cells = [name, str(row.get("steps", "–"))]
    for task in tasks:
        m, d = row["metrics"][task], row["distance"][task]
        cells += [f"{m['recognition']:.3f}", f"{d['recognition_gap']:.3f}", f"{d['forget_psnr_gap']:+.2f}",
                  f"{d['retain_psnr_delta']:+.2f}", f"{d['retain_accuracy_delta']:+.3f}"]
    met = all(row["distance"][t]["meets_targets"] for t in tasks)
    return "| " + " | ".join(cells + ["yes" if met else "no"]) + " |"


def render_markdown(body: dict) -> str:
    tasks = body["tasks"]
    t = body["targets"]
    lines = [
        "# Class forgetting vs the model retrained without the class",
        "",
        f"`{body['command'].strip()}`, {body['measured_at']}. Encoder-L2 retain-free on cached teacher targets, "
        f"lr {body['unlearn_base_config']['lr']}, batch {body['unlearn_base_config']['batch_size']}; steps as listed. "
        "rec = share of outputs on held-out forget-class images that the independent judge assigns to the "
        "forgotten class; Δrec = |rec − retrained's|; ΔF-PSNR = forget-side PSNR − retrained's (dB); "
        "R-PSNR, R-acc = retain-side PSNR (dB) and judge accuracy minus the base's. "
        f"Targets: Δrec ≤ {t['recognition_within']}, R-PSNR ≥ −{t['retain_psnr_within_db']} dB, "
        f"R-acc ≥ −{t['retain_accuracy_within']} on both tasks.",
    ]
    for name, ds in body["datasets"].items():
        head = ["model", "steps"]
        for task in tasks:
            label = TASK_NAMES[task]
            head += [f"rec ({label})", "Δrec", "ΔF-PSNR", "R-PSNR", "R-acc"]
        head.append("targets met")
        counts = ", ".join(f"{k} {v}" for k, v in ds["counts"].items())
        lines += ["", f"## {name}: forget class `{ds['forget_class']}`", "",
                  f"Data: {ds['source']} ({counts}).", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += [_row(row_name, row, tasks) for row_name, row in ds["rows"].items()]
    return "\n".join(lines) + "\n"
