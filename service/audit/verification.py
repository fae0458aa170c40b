"""The report page's verdict sections: the publish gate with each check's status, membership inference
(AUC, TPR at 1 % FPR, the two-sided verdict and the ROC curve), class evidence, and every attempt.

Reports written before check statuses existed carry ``passed`` booleans instead; they render too.
"""

from html import escape
from typing import Any

from service.audit.html import Markup, facts, legend, scale, svg, table

STATUS_STYLE = {"passed": ("pass", "PASS"), "failed": ("fail", "FAIL"), "disabled": ("off", "DISABLED"),
                "not_evaluated": ("warn", "NOT EVALUATED"), "not_applicable": ("off", "N/A")}  # fmt: skip
VERDICT_STYLE = {"passed": ("pass", "PASSED"), "passed_with_unevaluated_checks": ("warn", "PASSED WITH UNEVALUATED CHECKS"),
                 "not_evaluated": ("warn", "NOT EVALUATED"), "failed": ("fail", "FAILED")}  # fmt: skip
VARIANTS = {"raw": "raw (drives the verdict)", "calibrated_difference": "calibrated: error minus base error",
            "calibrated_ratio": "calibrated: error / base error"}  # fmt: skip
ROC_SERIES = {("raw", "before"): "#9e9e9e", ("raw", "after"): "#1f4e79", ("calibrated_difference", "after"): "#b26a00"}


def _styled(css: str, text: str) -> Markup:
    return Markup(f'<span class="badge {css}">{escape(text)}</span>')


def _status(check: dict) -> str:
    return check.get("status") or ("passed" if check.get("passed") else "failed")


def gate_verdict(gate: dict) -> str:
    return gate.get("verdict") or ("passed" if gate.get("passed") else "failed")


def verdict_badge(verdict: str) -> Markup:
    return _styled(*VERDICT_STYLE.get(verdict, ("fail", verdict.upper())))


def gate_html(gate: dict | None) -> str:
    if not gate:
        return "<p>The publish gate was not evaluated.</p>"
    checks = gate.get("checks") or []
    rows = [[c.get("name"), c.get("description"), c.get("value"), c.get("threshold"),
             _styled(*STATUS_STYLE.get(_status(c), ("fail", str(_status(c)).upper()))), c.get("margin"), c.get("reason")]
            for c in checks]  # fmt: skip
    failing = [escape(str(c.get("name"))) for c in checks if _status(c) == "failed"]
    unevaluated = [escape(str(c.get("name"))) for c in checks if _status(c) in ("disabled", "not_evaluated")]
    summary = f"<p>Verdict: {verdict_badge(gate_verdict(gate))}"
    summary += f" Failed checks: {', '.join(failing)}." if failing else ""
    summary += f" Not evaluated: {', '.join(unevaluated)}." if unevaluated else ""
    failed = [_status(c) == "failed" for c in checks]
    headers = ["Check", "Description", "Value", "Threshold", "Result", "Margin", "Why not evaluated"]
    return summary + "</p>\n" + table(headers, rows, failed)


def verification_html(verification: dict[str, Any] | None) -> str:
    if not verification:
        return "<p>No membership inference was run for this job.</p>"
    parts = [_membership(verification.get("membership") or {}), _class_evidence(verification.get("class_evidence") or {}),
             _attempts(verification.get("attempts") or [], verification.get("probe") or {})]  # fmt: skip
    return "\n".join(parts)


def _yes_no(value: bool | None, yes: str, no: str) -> Markup:
    if value is None:
        return Markup("—")
    return _styled("pass", yes) if value else _styled("fail", no)


def _membership(mia: dict) -> str:
    if "raw" not in mia:
        return f"<h3>Membership inference</h3>\n<p>Not computed: {escape(str(mia.get('unavailable') or 'unknown'))}</p>"
    verdict = mia.get("verdict") or {}
    intro = ("<p>Forget images (members) against never-seen images of the same classes, scored by the model's "
             "reconstruction error over fixed masks. AUC 0.5 is what a model that never saw the forget set gives.</p>")
    shown = facts([
        ("Forget images / never-seen images", f"{mia.get('n_forget')} / {mia.get('n_never_seen')}"),
        ("Forgotten (AUC ≤ 0.5 + δ)", _yes_no(verdict.get("forgotten"), "YES", "NO: still looks like training data")),
        ("Not over-forgotten (AUC ≥ 0.5 − δ)", _yes_no(verdict.get("not_over_forgotten"), "YES",
                                                      "NO: conspicuously worse than never-seen")),
        ("δ above / below chance", f"{verdict.get('delta_above', '—')} / {verdict.get('delta_below', '—')}"),
        ("AUC null standard deviation", mia.get("null_std")),
    ])  # fmt: skip
    rows = [[VARIANTS.get(name, name), when, (mia[name].get(when) or {}).get("auc"),
             (mia[name].get(when) or {}).get("tpr_at_1pct_fpr")]
            for name in VARIANTS if name in mia for when in ("before", "after")]  # fmt: skip
    attacks = table(["Attack", "Model", "ROC AUC", "TPR at 1 % FPR"], rows)
    return "<h3>Membership inference</h3>\n" + intro + "\n" + shown + "\n" + attacks + "\n" + _roc_chart(mia)


def _roc_chart(mia: dict) -> str:
    left, right, top, bottom = 48, 328, 12, 292
    x, y = scale(0.0, 1.0, left, right), scale(0.0, 1.0, bottom, top)
    parts = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#555" />',
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{top}" stroke="#ccc" stroke-dasharray="4 3" />',
             f'<text x="{(left + right) // 2}" y="{bottom + 28}" text-anchor="middle">false positive rate</text>',
             f'<text x="{left - 30}" y="{(top + bottom) // 2}" text-anchor="middle" '
             f'transform="rotate(-90 {left - 30} {(top + bottom) // 2})">true positive rate</text>']  # fmt: skip
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(v):.1f}" y="{bottom + 14}" text-anchor="middle">{v:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    shown = {}
    for (name, when), colour in ROC_SERIES.items():
        points = ((mia.get(name) or {}).get(when) or {}).get("roc")
        if points:
            coords = " ".join(f"{x(f):.1f},{y(t):.1f}" for f, t in points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2" />')
            shown[f"{name.replace('calibrated_', 'calibrated ')} {when}"] = colour
    parts += legend(shown, right + 16, top)
    return svg("ROC curve of the membership attack", 560, bottom + 40, parts)


def _class_evidence(evidence: dict) -> str:
    if "after" not in evidence:
        return f"<h3>Class evidence</h3>\n<p>Not computed: {escape(str(evidence.get('unavailable') or 'unknown'))}</p>"
    kinds = list(evidence["after"])
    rows = [[label, *[(evidence.get(key) or {}).get(k) for k in kinds]]
            for key, label in (("before", "base outputs"), ("after", "new outputs"),
                               ("visible_only", "visible pixels only (never-trained level)"))]  # fmt: skip
    intro = (f"<p>How often the feature network recognises the forgotten class in outputs for "
             f"{evidence.get('n')} held-out images of it. Largest excess over the never-trained level: "
             f"{escape(str(evidence.get('excess_over_reference')))}.</p>")
    return "<h3>Class evidence</h3>\n" + intro + "\n" + table(["Recognition rate", *kinds], rows)


def _attempts(attempts: list[dict], probe: dict) -> str:
    if not attempts:
        return ""
    rows = [[i + 1, a.get("budget"), a.get("steps"), a.get("stopped_early"), a.get("probe_every"),
             a.get("steps_to_verdict"), verdict_badge(str(a.get("verdict"))), ", ".join(a.get("failed_checks") or [])]
            for i, a in enumerate(attempts)]  # fmt: skip
    sizes = probe.get("images") or {}
    disjoint = probe.get("disjoint_from_final") or {}
    note = (f"<p>The run was probed every K steps on {sizes.get('forget', 0)} forget, {sizes.get('reference', 0)} "
            f"never-seen and {sizes.get('retain', 0)} retain-side images (kept apart from the final evaluation: "
            + ", ".join(f"{escape(k)} {'yes' if v else 'no'}" for k, v in disjoint.items())
            + ") and stopped when the gate held on them.</p>")  # fmt: skip
    headers = ["Attempt", "Step budget", "Steps run", "Stopped early", "Probe every", "Steps to verdict", "Verdict",
               "Failed checks"]  # fmt: skip
    return "<h3>Attempts</h3>\n" + note + "\n" + table(headers, rows)
