"""The signed audit report as a page for people: one self-contained HTML file, inline CSS and SVG.

Only retain-side figures are embedded. A report body that carries any other figure is refused
rather than rendered, so the page can never show a forget-set image.
"""

import base64
import hashlib
from html import escape
from typing import Any

from service.audit.html import Markup, badge, code, facts, legend, num, scale, section, svg, table, y_axis
from service.audit.verification import gate_html, gate_verdict, verdict_badge, verification_html

SAMPLE_ROWS = 50
SETS = ("forget", "retain", "reference")
DATA_SETS = ("forget", "retain", "holdout", "reference")
METRICS = ("psnr", "ssim", "cosine", "frechet", "n")
LOSS_SERIES = {"loss": "#1f4e79", "retain": "#2e7d32", "forget": "#c62828"}
BARS = {"before": "#9e9e9e", "after": "#1f4e79"}
VERIFY_COMMAND = "oblivio verify REPORT.json --public-key key.pem"
CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1a1a1a;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px;background:#fff}
h1{margin:0 0 8px}h2{border-bottom:2px solid #dde;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #dde;padding:3px 8px;text-align:left}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,monospace;word-break:break-all}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:700}
.pass{background:#2e7d32}.fail{background:#c62828}.warn{background:#b26a00}.off{background:#757575}tr.failed td{background:#fdecea}
figure{display:inline-block;margin:8px}figure img{image-rendering:pixelated;max-width:100%}
svg text{font:11px system-ui,sans-serif}
"""


def _header(body: dict) -> str:
    job, worker = body.get("job") or {}, body.get("worker") or {}
    checkpoints = body.get("checkpoints") or {}
    base, new = checkpoints.get("base") or {}, checkpoints.get("new")
    outcome = body.get("outcome", "unknown")
    passed = outcome == "published"
    config = ", ".join(f"{k}={num(v)}" for k, v in (job.get("config") or {}).items())
    timings = ", ".join(f"{k.removesuffix('_s')} {num(v)} s" for k, v in (body.get("timings") or {}).items())
    shown = facts([
        ("Job", code(job.get("id"))),
        ("Outcome", Markup(f"{badge(passed, 'PASSED' if passed else 'FAILED')} {escape(outcome)}")),
        ("Model", f"{job.get('model', '—')} ({job.get('family', '—')})"),
        ("Method", job.get("method")),
        ("Mode", job.get("mode")),
        ("Attempt", job.get("attempt")),
        ("Gate verdict", verdict_badge(gate_verdict(body["gate"])) if body.get("gate") else None),
        ("Config", config or None),
        ("Versions", f"v{base.get('version', '?')} → " + (f"v{new['version']}" if new else "not published")),
        ("Base checkpoint digest", code(base.get("digest"))),
        ("New checkpoint digest", code(new.get("digest")) if new else "none (nothing was published)"),
        ("Code version", body.get("code_version")),
        ("Worker", f"{worker.get('host', '—')} · {worker.get('device', '—')} · torch {worker.get('torch', '—')}"),
        ("Created at", body.get("created_at")),
        ("Timings", timings or None),
    ] + ([("Error", body["error"])] if body.get("error") else []))
    schema = escape(str(body.get("schema", "—")))
    return f"<header>\n<h1>Unlearning audit report</h1>\n<p>Schema {schema}</p>\n{shown}\n</header>"


def _requests(requests: list[dict]) -> str:
    if not requests:
        return "<p>No requests are attached to this job.</p>"
    parts = []
    for request in requests:
        samples = request.get("samples") or []
        shown = [[s.get("sample_key"), s.get("class_label"), code(s.get("sha256"))] for s in samples[:SAMPLE_ROWS]]
        parts.append(f"<h3>Request <code>{escape(str(request.get('id')))}</code></h3>")
        parts.append(facts([
            ("External id", request.get("external_id")),
            ("Status at report", request.get("status_at_report")),
            ("Received at", request.get("received_at")),
            ("Due at", request.get("due_at")),
            ("Classes", ", ".join(request.get("classes") or []) or None),
            ("Samples", len(samples)),
        ]))
        parts.append(table(["Sample key", "Class", "sha256"], shown))
        if len(samples) > SAMPLE_ROWS:
            parts.append(f"<p>… and {len(samples) - SAMPLE_ROWS} more</p>")
    return "\n".join(parts)


def _data_read(data_read: dict) -> str:
    if not data_read:
        return "<p>No data-read record.</p>"
    read = data_read.get("retained_training_samples_read")
    claim = "<p><strong>No retained training sample was read.</strong></p>" if read == 0 else ""
    total = data_read.get("samples_read_total")
    shown = facts([("Retained training samples read", read), ("Samples read in total", total)])
    rows = [
        [name, part.get("source"), part.get("dataset"), part.get("count"), code(part.get("digest")),
         code(part.get("manifest_digest"))]
        for name in DATA_SETS if (part := data_read.get(name))
    ]
    listing = table(["Set", "Source", "Dataset", "Samples", "Digest", "Manifest digest"], rows)
    return f"<p>{escape(str(data_read.get('statement', '')))}</p>\n{claim}\n{shown}\n{listing}"


def _loss_chart(history: list[dict]) -> str:
    series = {name: [(r["step"], r[name]) for r in history if r.get(name) is not None] for name in LOSS_SERIES}
    series = {name: points for name, points in series.items() if points}
    if not series:
        return "<p>No loss history was recorded.</p>"
    steps = [s for points in series.values() for s, _ in points]
    values = [v for points in series.values() for _, v in points]
    left, right, top, bottom = 56, 520, 12, 240
    first, last = min(steps), max(max(steps), min(steps) + 1)
    x = scale(first, last, left, right)
    y, parts = y_axis(min(0.0, min(values)), max(values), left, right, top, bottom)
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#555" />')
    for s in sorted({round(first + (last - first) * i / 4) for i in range(5)}):
        parts.append(f'<text x="{x(s):.1f}" y="{bottom + 16}" text-anchor="middle">{s}</text>')
    parts.append(f'<text x="{(left + right) // 2}" y="{bottom + 32}" text-anchor="middle">step</text>')
    for name, points in series.items():
        coords = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{LOSS_SERIES[name]}" stroke-width="2" />')
    parts += legend({name: LOSS_SERIES[name] for name in series}, right + 16, top)
    return svg("Training loss per step", 640, 280, parts)


def _sets(metrics: dict) -> list[str]:
    return [s for s in SETS if s in metrics] + sorted(s for s in metrics if s not in SETS)


def _tasks(sides: dict) -> list[str]:
    before, after = sides.get("before") or {}, sides.get("after") or {}
    return list(before) + [t for t in after if t not in before]


def _bar_chart(metrics: dict, key: str, label: str) -> str:
    """Grouped bars, before and after, for one metric across every (set, task)."""
    groups = [
        (name, task, [((metrics[name].get(side) or {}).get(task) or {}).get(key) for side in BARS])
        for name in _sets(metrics)
        for task in _tasks(metrics[name])
    ]
    values = [v for _, _, pair in groups for v in pair if v is not None]
    if not values:
        return ""
    left, top, bottom, width = 56, 12, 200, 64
    right = left + width * len(groups)
    y, parts = y_axis(min(0.0, min(values)), max(0.0, max(values)), left, right, top, bottom)
    for g, (name, task, pair) in enumerate(groups):
        middle = left + g * width + width // 2
        for b, (value, colour) in enumerate(zip(pair, BARS.values())):
            if value is not None:
                y0, y1 = sorted((y(0.0), y(value)))
                x0 = middle - 21 + 22 * b
                parts.append(f'<rect x="{x0}" y="{y0:.1f}" width="20" height="{y1 - y0:.1f}" fill="{colour}" />')
        parts.append(f'<text x="{middle}" y="{bottom + 14}" text-anchor="middle">{escape(name)}</text>')
        parts.append(f'<text x="{middle}" y="{bottom + 27}" text-anchor="middle">{escape(task)}</text>')
    parts += legend(BARS, right + 16, top)
    return f"<h3>{escape(label)}</h3>\n" + svg(label, right + 90, bottom + 36, parts)


def _metrics(metrics: dict) -> str:
    if not metrics:
        return "<p>No metrics were recorded.</p>"
    rows = []
    for name in _sets(metrics):
        before, after = metrics[name].get("before") or {}, metrics[name].get("after") or {}
        for task in _tasks(metrics[name]):
            named = {**(before.get(task) or {}), **(after.get(task) or {})}  # samplers report other numbers
            for key in list(METRICS) + sorted(k for k, v in named.items() if k not in METRICS and _is_num(v)):
                b, a = (before.get(task) or {}).get(key), (after.get(task) or {}).get(key)
                delta = num(a - b, signed=True) if a is not None and b is not None else None
                rows.append([name, task, key, b, a, delta])
    charts = _bar_chart(metrics, "cosine", "Feature cosine similarity") + _bar_chart(metrics, "psnr", "PSNR (dB)")
    return table(["Set", "Task", "Metric", "Before", "After", "Δ"], rows) + "\n" + charts


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _retain_figures(figures: list[dict]) -> list[tuple[dict, str]]:
    checked = []
    for figure in figures:
        if figure.get("set") != "retain":
            name = f"figure {figure.get('title')!r} is from the {figure.get('set')!r} set"
            raise ValueError(f"{name}; only retain-side figures may be embedded in a report")
        png = base64.b64decode(figure.get("png_base64", ""), validate=True)
        if hashlib.sha256(png).hexdigest() != figure.get("png_digest"):
            raise ValueError(f"figure {figure.get('title')!r} does not match its png_digest")
        checked.append((figure, base64.b64encode(png).decode()))
    return checked


def _figures(figures: list[tuple[dict, str]]) -> str:
    if not figures:
        return "<p>No retain-side figures are attached. Forget-set images are never shown.</p>"
    parts = ["<p>Retain-side hold-out only; forget-set images are never shown.</p>"]
    for figure, payload in figures:
        title = escape(str(figure.get("title", "")))
        keys = escape(", ".join(figure.get("sample_keys") or []))
        parts.append(
            f'<figure><img src="data:image/png;base64,{payload}" alt="{title}">'
            f"<figcaption>{title}<br><small>{keys}</small></figcaption></figure>"
        )
    return "\n".join(parts)


def _signature(document: dict) -> str:
    signature = document.get("signature") or {}
    shown = facts([
        ("Algorithm", signature.get("algorithm")),
        ("Key id", code(signature.get("key_id"))),
        ("Signature", code(signature.get("value"))),
        ("Body digest (sha256 of canonical JSON)", code(document.get("digest"))),
    ])
    note = (
        "<p>To verify offline, save the JSON report and the service's public key, then run "
        f"<code>{escape(VERIFY_COMMAND)}</code>. This page is a rendering; the signed JSON is the record.</p>"
    )
    return shown + "\n" + note


def render_html(document: dict[str, Any]) -> str:
    body = document["body"]
    figures = _retain_figures(body.get("figures") or [])
    sections = [
        _header(body),
        section("Requests and samples", _requests(body.get("requests") or [])),
        section("Data read", _data_read(body.get("data_read") or {})),
        section("Training loss", _loss_chart(body.get("loss_history") or [])),
        section("Metrics before and after", _metrics(body.get("metrics") or {})),
        section("Publish gate", gate_html(body.get("gate"))),
        section("Membership inference and class evidence", verification_html(body.get("verification"))),
        section("Retain-side outputs", _figures(figures)),
        section("Signature", _signature(document)),
    ]
    title = escape(f"Oblivio audit report: job {(body.get('job') or {}).get('id', '?')}")
    head = f'<head>\n<meta charset="utf-8">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>'
    content = "\n".join(sections)
    return f'<!DOCTYPE html>\n<html lang="en">\n{head}\n<body>\n<main>\n{content}\n</main>\n</body>\n</html>\n'
