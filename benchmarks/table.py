"""Rewrite the README's benchmark section from benchmarks/results/*.json.

    python -m benchmarks.table [--readme README.md]

Only the text between the markers ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` is
replaced; a result file that is missing leaves its table out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _where(r: dict[str, Any]) -> str:
    d = r["device"]
    gpu = f", {d['gpu']}" if d.get("gpu") else ""
    threads = f", {r['threads']} torch thread(s)" if "threads" in r else ""
    return (f"{d['device']}{gpu}: {d['cpu']}, {d['cpus_available']} CPUs available{threads}, "
            f"load average {d['load_average_at_start'][0]} at start, {r['measured_at']}")


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


# One row per family: the CPU files first, then those of benchmarks/gpu.sh.
ENGINE_FILES = ("engine", "engine-diffusion", "engine-vit-b16", "engine-cuda", "engine-diffusion-cuda",
                "engine-vit-b16-cuda")


def _ms(v: dict[str, Any], name: str) -> str:
    return f"{v[name]['step_ms']:.1f}" if name in v else "–"


def _ratio(ratios: dict[str, Any], name: str) -> str:
    return f"**{ratios[name]}**" if name in ratios else "–"


def _cache(c: dict[str, Any]) -> str:
    of = f" of {c['proxy_images']}" if "proxy_images" in c else ""
    full = c.get("full_proxy_bytes", 0) / 1e9
    worker = "" if c.get("worker_caches", True) else f"; full set {full:.1f} GB: the worker runs live"
    return (f"{c['bytes'] / 1e6:.0f} MB: {c['images']}{of} images × {c['draws_per_image']} + {c['noise_size']} noise"
            f"{worker}")


def engine(results: list[dict[str, Any]]) -> list[str]:
    lines = ["**Engine** (`benchmarks/engine.py`: ms per unlearning step, median; ratios within one run)", "",
             "| model | batch | (a) reference | (b) ours, cached targets | (b') ours, live teacher | (c) floor "
             "| reference / ours | ours / floor | reference / ours live | ours live / floor | teacher cache (b) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        v, ratios, device = r["variants"], r["ratios"], r["device"]["device"]
        name = f"{r.get('family', 'mae')}: {r['model']['name']}" + ("" if device == "cpu" else f" ({device})")
        lines.append(f"| {name} | {r['batch_size']} | {_ms(v, 'reference')} | {_ms(v, 'ours')} | {_ms(v, 'ours_live')} "
                     f"| {_ms(v, 'floor')} | {_ratio(ratios, 'reference_over_ours')} "
                     f"| {_ratio(ratios, 'ours_over_floor')} "
                     f"| {_ratio(ratios, 'reference_over_ours_live')} | {_ratio(ratios, 'ours_live_over_floor')} "
                     f"| {_cache(r['teacher_cache'])} |")
    lines.append("")
    for r in results:
        ratios, t = r["ratios"], r["targets"]
        lines.append(f"- {r.get('family', 'mae')}, {_where(r)}: reference / ours ≥ {t['reference_over_ours_min']} "
                     f"{_met(ratios['reference_over_ours'] >= t['reference_over_ours_min'])}, ours / floor ≤ "
                     f"{t['ours_over_floor_max']} {_met(ratios['ours_over_floor'] <= t['ours_over_floor_max'])}; "
                     f"cache built in {r['teacher_cache']['build_s']} s.")
    return lines + [""]


def retrain(r: dict[str, Any]) -> list[str]:
    u, t, ratio = r["unlearn"], r["retrain"], r["ratios"]
    return [f"**Forget a class vs retrain** (`benchmarks/retrain.py`; {_where(r)})", "",
            "| | steps | seconds |", "|---|---:|---:|",
            f"| unlearning (ours, batch {u['batch_size']}) | {u['steps']} | {u['seconds']:.1f} |",
            f"| teacher cache build (once per version) | | {u['teacher_cache_build_s']:.1f} |",
            f"| retraining without the class (extrapolated: {t['timed_steps']} of {t['recipe_steps']} steps timed) "
            f"| {t['recipe_steps']} | {t['seconds']:.0f} |",
            "", f"retrain / unlearn = **{ratio['retrain_over_unlearn']}×** ({ratio['retrain_over_unlearn_with_cache_build']}× "
            f"counting the cache build; target ≥ {r['targets']['retrain_over_unlearn_min']}×: "
            f"{_met(ratio['retrain_over_unlearn'] >= r['targets']['retrain_over_unlearn_min'])}).", ""]


def api(r: dict[str, Any]) -> list[str]:
    s, t, today = r["summary"], r["targets"], r["today_before_issue_13"]
    calib = r.get("python_loop_cpu_s")
    speed = f"; a pure-Python reference loop took {calib} s of CPU here (about 0.3 s on an idle modern core)" if calib else ""
    lines = [f"**API** (`benchmarks/api.py`, `POST /unlearn-requests` on Postgres, {r['workers']} API processes, "
             f"one run; {_where(r)}, load average {r['load_average_at_end'][0]} at end{speed})", "",
             "| | before issue 13 | now | target |", "|---|---:|---:|---:|",
             f"| (a) bare FastAPI endpoint, same body, 64 connections | | {s['bare_rps']} req/s | |",
             f"| (b) durable ceiling: (a) + one INSERT + COMMIT | | {s['durable_ceiling_rps']} req/s | |",
             f"| (c) Oblivio, closed loop, 64 connections | {today['closed_loop_rps_64']} req/s | "
             f"{s['oblivio_rps_64']} req/s ({s['errors_64']} errors) | |",
             f"| (c) ratio to the durable ceiling | | {s['ratio_to_durable']} | ≥ {t['ratio_to_durable_min']}: "
             f"{_met(s['ratio_to_durable'] >= t['ratio_to_durable_min'] and s['errors_64'] == 0)} |",
             f"| (c) p50 / p99 at 64 connections | p99 {today['p99_ms_64']} ms | {s['p50_ms_64']} / {s['p99_ms_64']} ms | |",
             f"| (d) API CPU per accepted request | {today['cpu_ms_per_request']} ms | {s['server_cpu_ms_per_request']} ms "
             f"(durable ceiling {r['b_durable']['server_cpu_ms_per_request']} ms; generator {s['generator_cpu_ms_per_request']} ms) "
             f"| ≤ {t['cpu_ms_per_request_max']} ms: {_met(s['server_cpu_ms_per_request'] <= t['cpu_ms_per_request_max'])} |",
             f"| (e) open loop 50 req/s offered: p99 | | {s['open_50_p99_ms']} ms | < {t['open_50_p99_ms_max']} ms: "
             f"{_met((s['open_50_p99_ms'] or 1e9) < t['open_50_p99_ms_max'])} |",
             f"| (e) open loop 200 req/s offered: p99 | at 100 req/s: {today['open_loop_100_rps_latency_s']} s, no back-pressure | "
             f"{s['open_200_p99_ms']} ms ({r['e_open_200']['accepted_rps']} req/s accepted, "
             f"{r['e_open_200']['statuses'].get('503', 0)} answered 503) | < {t['open_200_p99_ms_max']} ms: "
             f"{_met((s['open_200_p99_ms'] or 1e9) < t['open_200_p99_ms_max'])} |",
             f"| (f) overload {s['overload_offered_rps']} req/s offered: 503 + Retry-After p99 | no back-pressure | "
             f"{s['overload_refusal_p99_ms']} ms ({s['overload_refused']} refused, {s['overload_refused_with_retry_after']} "
             f"with Retry-After; {s['overload_accepted_rps']} req/s accepted, {s['overload_accepted_lost']} lost) | "
             f"< {t['refusal_ms_max']} ms: {_met((s['overload_refusal_p99_ms'] or 1e9) < t['refusal_ms_max'] and s['overload_accepted_lost'] == 0)} |",
             f"| (g) one request naming 10,000 samples | {today['samples_10k_s']} s | {s['samples_10k_s']} s | "
             f"< {t['samples_10k_s_max']} s: {_met(s['samples_10k_s'] < t['samples_10k_s_max'])} |",
             ""]
    return lines


def batching(r: dict[str, Any]) -> list[str]:
    lines = [f"**Coalesced requests** (`benchmarks/batching.py`, {r['steps_per_job']} steps per job, "
             f"{r['proxy_images']} proxy images; {_where(r)})", "",
             "| requests in the job | job s (claim → publish) | load s | unlearn s | evaluate s | next version's cache s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for n, j in r["jobs"].items():
        lines.append(f"| {n} | {j['job_s']} | {j.get('load_s', '')} | {j.get('unlearn_s', '')} | "
                     f"{j.get('evaluate_s', '')} | {j['warm_next_s']} |")
    (name, ratio), = r["ratios"].items()
    lines += ["", f"{name.replace('_over_', ' / ')} = **{ratio}** (target ≤ {r['targets']['100_over_1_max']}: "
              f"{_met(ratio <= r['targets']['100_over_1_max'])}). A cold job (teacher cache miss) took "
              f"{r['cold_job']['job_s']} s.", ""]
    return lines


def render() -> str:
    parts = ["", "Generated by `python -m benchmarks.table` from `benchmarks/results/*.json`; do not edit by hand.", ""]
    engines = [r for r in map(_load, ENGINE_FILES) if r is not None]
    if engines:
        parts += engine(engines)
    for name, fn in (("retrain", retrain), ("api", api), ("batching", batching)):
        result = _load(name)
        if result is not None:
            parts += fn(result)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table", description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {START} … {END} section")
    section = f"{START}\n{render()}\n{END}"
    args.readme.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S))
    print(f"rewrote the benchmark section of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
