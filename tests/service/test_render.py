"""The HTML audit report: every section and number shown, user text escaped, only retain images embedded."""

import base64
import hashlib
import re
import struct
import zlib
from html.parser import HTMLParser

import pytest

from service.audit.render import SAMPLE_ROWS, VERIFY_COMMAND, render_html

VOID = {"meta", "img", "br", "hr", "input", "link"}
HOSTILE = "<script>alert('x')</script>"


def tiny_png(shade: int, size: int = 4) -> bytes:
    """A real greyscale PNG, built with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([shade]) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def make_figure(shade: int, set_name: str = "retain") -> dict:
    png = tiny_png(shade)
    return {
        "title": f"Retain-side hold-out {shade}: input, base output, new output",
        "set": set_name,
        "sample_keys": [f"px/{shade}.png"],
        "png_digest": hashlib.sha256(png).hexdigest(),
        "png_base64": base64.b64encode(png).decode(),
    }


def make_scores(psnr: float, cosine: float) -> dict:
    return {
        task: {"psnr": psnr + i, "ssim": 0.61, "cosine": cosine, "frechet": 1.25, "n": 64}
        for i, task in enumerate(["box_25", "box_50", "random"])
    }


def make_samples(count: int) -> list[dict]:
    return [{"sample_key": f"tr/{i:04d}.png", "class_label": "trouser", "sha256": f"{i:064x}"} for i in range(count)]


def make_verification() -> dict:
    def attack(auc: float, tpr: float) -> dict:
        return {"auc": auc, "tpr_at_1pct_fpr": tpr, "roc": [[0.0, 0.0], [0.25, auc - 0.1], [1.0, 1.0]]}

    return {
        "membership": {
            "n_forget": 8, "n_never_seen": 192, "null_std": 0.105,
            "raw": {"before": attack(0.8125, 0.25), "after": attack(0.4375, 0.0)},
            "calibrated_difference": {"before": attack(0.5, 0.0), "after": attack(0.1875, 0.0)},
            "calibrated_ratio": {"before": attack(0.5, 0.0), "after": attack(0.2031, 0.0)},
            "verdict": {"auc": 0.4375, "delta_above": 0.2098, "delta_below": 0.2098, "forgotten": True,
                        "not_over_forgotten": True},
        },
        "class_evidence": {"n": 48, "before": {"random": 0.875, "box_50": 0.9}, "after": {"random": 0.3125, "box_50": 0.66},
                           "visible_only": {"random": 0.1771, "box_50": 0.6458}, "excess_over_reference": 0.1354},
        "probe": {"images": {"forget": 8, "retain": 64, "reference": 64},
                  "disjoint_from_final": {"forget": False, "retain": True, "reference": True}},
        "attempts": [{"budget": 600, "steps": 250, "stopped_early": True, "probe_every": 50, "steps_to_verdict": 250,
                      "probes": [], "verdict": "passed", "failed_checks": []}],
    }  # fmt: skip


def make_report(**body_changes) -> dict:
    body = {
        "schema": "oblivio.report/1",
        "created_at": "2026-11-25T12:00:00+00:00",
        "code_version": "0.1.0",
        "outcome": "published",
        "error": None,
        "job": {
            "id": "5b0e6a8e-0000-4000-8000-000000000001",
            "model": "fmnist-mae",
            "family": "mae",
            "method": "encoder_l2",
            "mode": "retain_free",
            "attempt": 1,
            "config": {"lr": 0.001, "alpha": 0.25, "epochs": 3, "batch_size": 64, "seed": 0},
        },
        "requests": [
            {
                "id": "7c1d0000-0000-4000-8000-000000000002",
                "external_id": "dsr-1",
                "status_at_report": "running",
                "received_at": "2026-11-25T11:00:00+00:00",
                "due_at": "2026-12-25T11:00:00+00:00",
                "classes": ["trouser"],
                "samples": make_samples(8),
            }
        ],
        "data_read": {
            "statement": "retain-free: only the forget set and the proxy dataset were read",
            "retained_training_samples_read": 0,
            "forget": {"dataset": "fmnist-train", "count": 8, "digest": "f" * 64},
            "retain": {
                "source": "proxy",
                "dataset": "fmnist-test",
                "count": 9000,
                "digest": "d" * 64,
                "manifest_digest": "e" * 64,
            },
            "holdout": {"dataset": "fmnist-holdout", "count": 500, "digest": "4" * 64},
            "reference": None,
            "samples_read_total": 9508,
        },
        "checkpoints": {"base": {"version": 1, "digest": "b" * 64}, "new": {"version": 2, "digest": "c" * 64}},
        "metrics": {
            "forget": {"before": make_scores(18.1, 0.93), "after": make_scores(11.4, 0.52)},
            "retain": {"before": make_scores(19.2, 0.91), "after": make_scores(19.0, 0.9)},
            "reference": {"before": make_scores(12.3, 0.55), "after": make_scores(12.2, 0.54)},
        },
        "gate": {
            "verdict": "passed",
            "publishable": True,
            "unevaluated_checks": [],
            "thresholds": {"retain_max_psnr_drop": 1.0, "forget_min_cosine_drop": 0.1},
            "checks": [
                {"name": "retain_max_psnr_drop", "value": 0.2, "threshold": 1.0, "status": "passed", "margin": 0.8,
                 "description": "retain PSNR may drop by at most the threshold", "reason": None},
                {"name": "forget_min_cosine_drop", "value": 0.41, "threshold": 0.1, "status": "passed", "margin": 0.31,
                 "description": "forget cosine must fall by at least the threshold", "reason": None},
            ],
        },
        "verification": make_verification(),
        "loss_history": [{"step": s, "loss": 1.0 / s, "retain": 0.1, "forget": 2.0 - s / 10} for s in range(1, 11)],
        "figures": [make_figure(40), make_figure(200)],
        "timings": {"load_s": 1.2, "unlearn_s": 30.5, "evaluate_s": 4.0, "total_s": 36.0},
        "worker": {"host": "gpu-host-7", "device": "cuda:0", "torch": "2.13.0"},
    }
    body.update(body_changes)
    return {"body": body, "digest": "a" * 64, "signature": {"algorithm": "Ed25519", "key_id": "0123456789abcdef",
                                                            "value": "c2lnbmF0dXJlLXZhbHVl"}}


class Structure(HTMLParser):
    """Records unclosed or mismatched tags; void and self-closing tags need no end tag."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        top = self.open.pop() if self.open else None
        if top != tag:
            self.mismatched.append((tag, top))


def assert_well_formed(html: str) -> None:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert parser.mismatched == []
    assert parser.open == []


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(p) for p in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def row_of(html: str, text: str) -> str:
    return next(row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if text in row)


def test_page_shows_every_section_and_the_numbers():
    document = make_report()
    html = render_html(document)

    for heading in ["Requests and samples", "Data read", "Training loss", "Metrics before and after",
                    "Publish gate", "Membership inference and class evidence", "Retain-side outputs", "Signature"]:
        assert f"<h2>{heading}</h2>" in html
    for fact in ["5b0e6a8e-0000-4000-8000-000000000001", "fmnist-mae", "encoder_l2", "retain_free", "PASSED",
                 "v1 → v2", "b" * 64, "c" * 64, "0.1.0", "gpu-host-7", "cuda:0", "2026-11-25T12:00:00+00:00",
                 "unlearn 30.5 s", "lr=0.001", "dsr-1", "tr/0007.png", f"{7:064x}"]:
        assert fact in html
    assert "No retained training sample was read." in html
    retain = row_of(html, "<td>retain</td><td>proxy</td>")
    assert "fmnist-test" in retain and '<td class="num">9000</td>' in retain and "e" * 64 in retain
    assert "fmnist-holdout" in row_of(html, "<td>holdout</td>") and "9508" in html
    forget_psnr = row_of(html, "<td>forget</td><td>box_25</td><td>psnr</td>")
    assert '<td class="num">18.1</td><td class="num">11.4</td><td>-6.7</td>' in forget_psnr
    reference_psnr = row_of(html, "<td>reference</td><td>random</td><td>psnr</td>")
    assert '<td class="num">14.3</td><td class="num">14.2</td><td>-0.1</td>' in reference_psnr
    assert 'class="failed"' not in html and "<th>Error</th>" not in html
    assert "0123456789abcdef" in html and "c2lnbmF0dXJlLXZhbHVl" in html and "a" * 64 in html
    assert VERIFY_COMMAND in html


def test_charts_draw_three_loss_lines_and_before_after_bars():
    html = render_html(make_report())
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)

    assert len(svgs) == 4
    loss, cosine, psnr, roc = svgs
    assert roc.count("<polyline") == 3 and "ROC curve" in roc
    assert loss.count("<polyline") == 3
    assert all(name in loss for name in ["loss", "retain", "forget"])
    bars = 3 * 3 * 2  # sets x tasks x (before, after)
    legend = 2
    assert cosine.count("<rect") == psnr.count("<rect") == bars + legend
    assert "Feature cosine similarity" in cosine and "PSNR (dB)" in psnr


def test_user_text_is_escaped():
    samples = [{"sample_key": HOSTILE, "class_label": HOSTILE, "sha256": "0" * 64}]
    request = {"id": "r", "external_id": HOSTILE, "received_at": "t", "due_at": "t", "classes": [HOSTILE],
               "samples": samples}
    figure = make_figure(90) | {"title": HOSTILE, "sample_keys": [HOSTILE]}
    html = render_html(make_report(requests=[request], figures=[figure]))

    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert_well_formed(html)


@pytest.mark.parametrize("set_name", ["forget", "reference", None])
def test_a_figure_of_any_set_but_retain_is_refused(set_name):
    document = make_report(figures=[make_figure(10), make_figure(20, set_name)])

    with pytest.raises(ValueError, match="only retain-side figures"):
        render_html(document)


def test_a_figure_that_does_not_match_its_digest_is_refused():
    figure = make_figure(10) | {"png_digest": "0" * 64}

    with pytest.raises(ValueError, match="png_digest"):
        render_html(make_report(figures=[figure]))


def test_embedded_images_are_exactly_the_retain_figures():
    document = make_report()
    html = render_html(document)

    embedded = sorted(hashlib.sha256(png).hexdigest() for png in embedded_pngs(html))
    assert embedded == sorted(f["png_digest"] for f in document["body"]["figures"])
    assert html.count("<img") == 2


def test_a_gate_failure_renders_failed_and_marks_the_failing_check():
    document = make_report(outcome="gate_failed", checkpoints={"base": {"version": 1, "digest": "b" * 64}, "new": None})
    gate = document["body"]["gate"]
    gate["verdict"], gate["publishable"] = "failed", False
    gate["checks"][1] |= {"value": 0.02, "status": "failed", "margin": -0.08}
    document["body"]["verification"]["attempts"][0] |= {"verdict": "failed", "failed_checks": ["forget_min_cosine_drop"]}
    html = render_html(document)

    assert "FAILED" in html and "PASSED" not in html
    assert "v1 → not published" in html
    assert "Failed checks: forget_min_cosine_drop." in html
    failing = row_of(html, "<td>forget_min_cosine_drop</td>")
    assert 'class="failed"' in failing and "FAIL" in failing and "-0.08" in failing
    assert 'class="failed"' not in row_of(html, "<td>retain_max_psnr_drop</td>")
    assert_well_formed(html)


def test_missing_optional_parts_render():
    document = make_report(
        outcome="job_error",
        error="CUDA out of memory",
        checkpoints={"base": {"version": 3, "digest": "b" * 64}, "new": None},
        gate=None,
        loss_history=[],
        figures=[],
        timings={},
    )
    body = document["body"]
    del body["metrics"]["reference"]
    body["requests"][0]["external_id"] = None
    html = render_html(document)

    assert "FAILED" in html and "job_error" in html and "CUDA out of memory" in html
    assert "The publish gate was not evaluated." in html
    assert "No loss history was recorded." in html
    assert "No retain-side figures are attached." in html
    assert "<td>reference</td>" not in html
    assert embedded_pngs(html) == []
    assert_well_formed(html)


def test_an_almost_empty_body_renders():
    document = {"body": {"outcome": "invalid_samples", "job": {"id": "j"}}, "digest": None, "signature": None}

    html = render_html(document)

    assert "FAILED" in html and "No requests are attached to this job." in html
    assert_well_formed(html)


def test_long_sample_lists_show_the_first_rows_and_a_count():
    document = make_report()
    document["body"]["requests"][0]["samples"] = make_samples(SAMPLE_ROWS + 70)
    html = render_html(document)

    assert f"tr/{SAMPLE_ROWS - 1:04d}.png" in html and f"tr/{SAMPLE_ROWS:04d}.png" not in html
    assert "… and 70 more" in html
    assert "<td>120</td>" in html.replace(' class="num"', "")


def test_the_full_page_is_well_formed_and_self_contained():
    html = render_html(make_report())

    assert_well_formed(html)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|\bhttps?://(?!www\.w3\.org/2000/svg)", html)


def test_membership_verdict_roc_class_evidence_and_attempts_are_shown():
    html = render_html(make_report())
    for fact in ["Membership inference", "0.8125", "0.4375", "0.1875", "TPR at 1 % FPR", "0.2098", "Class evidence",
                 "0.3125", "0.1771", "0.1354", "Attempts", "Steps to verdict"]:
        assert fact in html
    assert "YES" in row_of(html, "Forgotten (AUC") and "YES" in row_of(html, "Not over-forgotten")
    assert '<td class="num">250</td>' in row_of(html, '<td class="num">600</td>')
    assert_well_formed(html)


def test_an_over_forgotten_run_and_unevaluated_checks_say_so():
    document = make_report()
    body = document["body"]
    body["verification"]["membership"]["verdict"]["not_over_forgotten"] = False
    body["gate"]["verdict"] = "passed_with_unevaluated_checks"
    body["gate"]["checks"].append({"name": "class_max_recognition_over_reference", "value": None, "threshold": 0.2,
                                   "status": "not_evaluated", "margin": None, "description": "d",
                                   "reason": "the model has no feature network with class names"})  # fmt: skip
    html = render_html(document)
    assert "NO: conspicuously worse than never-seen" in html
    assert "PASSED WITH UNEVALUATED CHECKS" in html and "Not evaluated: class_max_recognition_over_reference." in html
    assert "NOT EVALUATED" in row_of(html, "<td>class_max_recognition_over_reference</td>")
    assert "the model has no feature network with class names" in html
    assert_well_formed(html)


def test_a_report_from_before_check_statuses_still_renders():
    document = make_report(verification=None)
    gate = document["body"]["gate"]
    del gate["verdict"]
    gate["passed"] = True
    for check in gate["checks"]:
        del check["status"]
        check["passed"] = True
    html = render_html(document)
    assert "PASS" in row_of(html, "<td>retain_max_psnr_drop</td>")
    assert "No membership inference was run for this job." in html
