"""Rendering of the quality benchmark: Markdown tables (the paper's Table 1 layout) and the figure."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

BOXES = (("box_25", "centre box of 1/4 of the side (paper: 4x4 patches)"),
         ("box_50", "centre box of 1/2 of the side (paper: 8x8 patches)"))  # fmt: skip
# (key, header, which direction is better on D_F, on D_R)
METRICS = (("psnr", "PSNR", "↓", "↑"), ("ssim", "SSIM", "↓", "↑"), ("cosine", "cos", "↓", "↑"),
           ("frechet", "Fréchet", "↑", "↓"))  # fmt: skip
TRAINS = {None: "", "max_loss": "generator", "noisy_label": "generator", "retain_label": "generator",
          "random_encoder": "encoder", "encoder_l2": "encoder", "gradient_surgery": "encoder"}  # fmt: skip


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if key in ("psnr", "frechet") else f"{value:.3f}"


def render_markdown(body: dict) -> str:
    lines = [
        f"# Quality benchmark: the paper's comparison on the demo {body['model'].get('family', 'mae')} model",
        "",
        f"`{body['command']}` — {body['wall_s'] / 60:.1f} min wall time with {body['machine']['threads']} torch "
        f"thread(s) on a shared 2-core machine ({body['machine']['processor']}, torch {body['machine']['torch']}). Every method: "
        f"{body['config']['steps']} steps (the model's header recommends {body.get('recommended_steps', 600)}), batch "
        f"{body['config']['batch_size']}, lr {body['config']['lr']}, alpha {body['config']['alpha']}, seed {body['seed']}.",
        "",
        "D_F: the forget samples; D_R: held-out test images of the retained classes. Arrows: the direction "
        "unlearning wants (D_F worse, D_R unchanged). PSNR (dB) and SSIM in the hidden box; cos: cosine "
        "similarity of output and original in the demo classifier's feature space; Fréchet: Fréchet distance "
        "between output and original features in that space (not FID).",
        "",
    ]
    for scenario in body["scenarios"].values():
        counts = scenario["counts"]
        lines += [f"## {scenario['title']}", "",
                  f"forget set {counts['forget']} images; real retain data {counts['retain']}; proxy {counts['proxy']}; "
                  f"evaluated D_F {counts['eval_forget']}, D_R {counts['eval_retain']}.", ""]
        for task, caption in BOXES:
            head = ["Method", "trains", "retain data"]
            head += [f"D_F {h} {f}" for _, h, f, _ in METRICS] + [f"D_R {h} {r}" for _, h, _, r in METRICS]
            lines += [f"**{caption}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * 8]
            for label, row in scenario["rows"].items():
                f, r = row["metrics"]["forget"][task], row["metrics"]["retain"][task]
                cells = [label, TRAINS[row["method"]], row["retain_source"] or ""]
                cells += [_fmt(k, f[k]) for k, *_ in METRICS] + [_fmt(k, r[k]) for k, *_ in METRICS]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        if "Retrained (reference)" in scenario["rows"]:
            lines += ["Retrained (reference): the same recipe and seed trained without the forgotten class "
                      f"({body.get('retrained')}); unlearning should land near it on D_F and on D_R.", ""]
        lines += [f"![{scenario['title']}]({scenario['figure']})", ""]
    return "\n".join(lines)


@torch.no_grad()
def render_figure(path: Path, models: dict, *, retain: torch.Tensor, forget: torch.Tensor, title: str,
                  side_frac: float = 0.5, scale: int = 3) -> None:
    """Rows: one per model. Left: retain-side outputs (centre box); right: forget-side fills only.

    retain, forget: (N, C, H, W) in [0, 1]. The forget block shows, for models after unlearning,
    only the generated box (visible pixels grey); the base model's forget outputs and the forget
    originals are never drawn.
    """
    base = models["Original"]
    n = len(retain)
    c, h, w = base.image_shape
    cell, pad, label_w, gap, top = h * scale, 2, 300, 24, 44
    grid_w = n * (cell + pad)
    width = label_w + 2 * grid_w + gap
    height = top + (len(models) + 1) * (cell + pad)
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title, fill=0)
    draw.text((label_w, 24), "retain side (held-out D_R): output with the centre box filled", fill=0)
    draw.text((label_w + grid_w + gap, 24), "forget side: the generated box only, after unlearning", fill=0)
    mask_r = base.box_mask(n, side_frac)
    mask_f = base.box_mask(len(forget), side_frac)
    hidden_r, hidden_f = base.hidden_pixels(mask_r), base.hidden_pixels(mask_f)  # (N, 1, H, W)

    def paste(row: int, block: int, images: torch.Tensor) -> None:
        for i, img in enumerate(images):
            pixels = (img[0].clamp(0, 1) * 255).round().byte().numpy()  # (H, W), first channel
            tile = Image.fromarray(pixels, mode="L").resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (label_w + block * (grid_w + gap) + i * (cell + pad), top + row * (cell + pad)))

    draw.text((4, top + cell // 2), "retain input (box hidden)", fill=0)
    paste(0, 0, retain.masked_fill(hidden_r, 0.5))
    for row, (label, model) in enumerate(models.items(), start=1):
        draw.text((4, top + row * (cell + pad) + cell // 2), label, fill=0)
        paste(row, 0, model.generate(retain.to(model.device), mask_r.to(model.device)).cpu())
        if model is not base:
            fill = model.generate(forget.to(model.device), mask_f.to(model.device)).cpu()
            paste(row, 1, fill.masked_fill(~hidden_f, 0.5))
    canvas.save(path, format="PNG", optimize=True)
