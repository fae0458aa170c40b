"""`oblivio demo`: the whole product on one machine, on the embedded default.

Exports Fashion-MNIST to PNG files, migrates the embedded database, starts the API and a worker,
registers the demo data and generator if missing, files one request for a class and one for a
handful of single samples, follows both to completion and prints what came out.
``--family diffusion`` runs it on the demo diffusion inpainter (model ``fmnist-diffusion``),
``--family gan`` on the demo GAN (``fmnist-gan``, a sampler: method ``gan_cascade``) instead of the
demo MAE (``fmnist-mae``); all three can live side by side in one home.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from service.cli.advice import after_gate_failure
from service.cli.progress import BAR_FORMAT, postfix, progress_of
from service.config import Settings, get_settings
from service.db.enums import Role
from service.db.migrate import upgrade
from service.db.session import make_engine, make_sessionmaker
from service.domain.auth import create_api_key
from service.domain.families import SAMPLER_FAMILIES
from service.storage import make_store
from worker.fashion_mnist import CLASS_NAMES, export
from worker.unlearn.data import read_manifest

ASSETS = Path(__file__).parent / "assets" / "demo"
MODEL = "fmnist-mae"
# family -> demo model; its checkpoint is assets/demo/<family>.safetensors
MODELS = {"mae": MODEL, "diffusion": "fmnist-diffusion", "gan": "fmnist-gan"}
# family -> the class the demo forgets first (the next ones in CLASS_NAMES on a re-run). The demo GAN is
# weak and generates no trousers (README, Demo GAN), so forgetting them could show nothing: it forgets
# sandals, the class benchmarks/gan_retrain.py measures.
FORGET_CLASS = {"mae": "trouser", "diffusion": "trouser", "gan": "sandal"}
SAMPLER_METHOD = "gan_cascade"  # of service.domain.families.SAMPLER_METHODS; masked models take the API's default
# Worker settings per demo family unless the environment sets them: a diffusion model samples with
# 10 DDIM steps, so its evaluation costs ten forward passes an image; 64 images a set keep the demo short.
DEMO_ENV = {"diffusion": {"OBLIVIO_EVAL_MAX_IMAGES": "64"}}
TERMINAL = {"completed", "failed", "cancelled", "rejected"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oblivio demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--keep-running", action="store_true", help="leave API and worker up at the end")
    parser.add_argument("--samples", type=int, default=8, help="single samples in the second request")
    parser.add_argument("--family", choices=sorted(MODELS), default="mae", help="which demo generator (default: mae)")
    args = parser.parse_args(argv)
    model = MODELS[args.family]
    settings = get_settings()
    started = time.monotonic()
    data_dir = settings.data_roots[0] / "fashion-mnist"
    say(f"home: {settings.home}")
    say("exporting Fashion-MNIST to PNG files (once)…")
    manifests = export(data_dir)
    upgrade(settings)
    admin_key = _admin_key(settings)
    port = args.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    procs = _start(settings, port, DEMO_ENV.get(args.family, {}))
    try:
        _wait_ready(url, procs)
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120)
        _register(admin, manifests, args.family)
        officer_key = admin.post("/api-keys", json={"name": "demo-officer", "role": "officer"}).json()["key"]
        officer = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {officer_key}"}, timeout=60)
        requests = _file_requests(officer, manifests["train"], args.samples, model,
                                  first_class=FORGET_CLASS[args.family], method=method_for(args.family))
        results = [_follow(officer, r) for r in requests]
        _report(admin, results, settings, time.monotonic() - started, keep_running=args.keep_running, model=model)
        _dashboard(url, admin_key, settings, keep_running=args.keep_running)
        if args.keep_running:
            say(f"the API keeps running at {url} (admin key in {settings.home / 'demo-admin.key'}), with its worker:")
            say(f"  curl -H \"Authorization: Bearer $(cat {settings.home / 'demo-admin.key'})\" "
                f"{url}/models/{model}/versions/current/checkpoint -o current.safetensors")
            say("Ctrl-C stops both.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0 if all(r["status"] == "completed" for r in results) else 1
    finally:
        _stop(procs)


def say(message: str) -> None:
    print(f"[oblivio] {message}", flush=True)


def _admin_key(settings: Settings) -> str:
    path = settings.home / "demo-admin.key"
    if path.is_file():
        return path.read_text().strip()
    with make_sessionmaker(make_engine(settings)).begin() as session:
        _key, token = create_api_key(session, name="demo-admin", role=Role.admin)
    path.write_text(token)
    path.chmod(0o600)
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(settings: Settings, port: int, defaults: dict[str, str] | None = None) -> list[subprocess.Popen]:
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**(defaults or {}), **os.environ, "OBLIVIO_HOME": str(settings.home)}
    commands = {
        "api": [sys.executable, "-m", "uvicorn", "service.asgi:app", "--port", str(port), "--log-level", "warning"],
        "worker": [sys.executable, "-m", "worker"],
    }
    procs = []
    for name, command in commands.items():
        log = open(logs / f"{name}.log", "ab")
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    say(f"API and worker started; logs in {logs}")
    return procs


def _wait_ready(url: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a demo process exited early; see the logs")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("API not ready after 60 s; see the logs")


def _register(admin: httpx.Client, manifests: dict[str, Path], family: str = "mae") -> None:
    """Register the demo data and the family's demo model if missing, and wait until the worker validated it."""
    model = MODELS[family]
    for name, kind, split in (("fmnist-train", "training", "train"), ("fmnist-test", "proxy", "test")):
        if admin.get(f"/datasets/{name}").status_code == 404:
            admin.post("/datasets", json={"name": name, "kind": kind, "description": f"Fashion-MNIST {split} split"}).raise_for_status()
        rows = [r.__dict__ for r in read_manifest(manifests[split])]
        if admin.get(f"/datasets/{name}").json()["sample_count"] < len(rows):
            for start in tqdm(range(0, len(rows), 10_000), desc=f"registering {name}", unit="10k samples"):
                admin.post(f"/datasets/{name}/samples", json={"samples": rows[start : start + 10_000]}).raise_for_status()
    if admin.get(f"/models/{model}").status_code == 404:
        spec = {"name": model, "training_dataset": "fmnist-train", "proxy_dataset": "fmnist-test"}
        with open(ASSETS / f"{family}.safetensors", "rb") as checkpoint, open(ASSETS / "classifier.safetensors", "rb") as features:
            files = {"checkpoint": checkpoint, "features": features}
            admin.post("/models", data={"spec": json.dumps(spec)}, files=files).raise_for_status()
        say(f"registered model {model} (version 1 = the demo base generator)")
    while (status := admin.get(f"/models/{model}").json()["status"]) == "validating":
        time.sleep(0.5)  # the worker loads the base checkpoint and runs it once before it can be used
    if status != "ready":
        raise SystemExit(f"the worker refused the demo model: {admin.get(f'/models/{model}/versions').json()[0]['problems']}")


def method_for(family: str) -> str | None:
    """The method the demo names for a model of ``family``: None (the API's default) unless it is a sampler."""
    return SAMPLER_METHOD if family in SAMPLER_FAMILIES else None


def _file_requests(officer: httpx.Client, train_manifest: Path, n_samples: int, model: str = MODEL, *,
                   first_class: str = "trouser", method: str | None = None) -> list[dict]:
    """A class request and a few single samples; on a re-run, classes and samples already erased are skipped."""
    filed, forgotten_class = [], None
    how = {"method": method} if method else {}
    for label in (first_class, *CLASS_NAMES):
        response = officer.post("/unlearn-requests", json={"model": model, "classes": [label], **how})
        _unless_erased_before(response)
        if response.status_code == 201:
            filed.append(response.json())
            forgotten_class = label
            say(f"filed request {response.json()['id']}: forget the class '{label}'")
            break
    candidates = [r.sample_key for r in read_manifest(train_manifest) if r.class_label != forgotten_class]
    for attempt in range(10):
        keys = random.Random(attempt).sample(candidates, n_samples)
        response = officer.post("/unlearn-requests", json={"model": model, "samples": keys, **how})
        _unless_erased_before(response)
        if response.status_code == 201:
            filed.append(response.json())
            say(f"filed request {response.json()['id']}: forget {len(keys)} single samples ({', '.join(keys[:3])}, …)")
            break
    return filed


def _unless_erased_before(response: httpx.Response) -> None:
    """Stop on a refusal other than the one a re-run meets (what it asks for is already erased): it would recur."""
    if response.status_code != 201 and "already erased" not in response.text:
        raise SystemExit(f"the API refused the demo's request ({response.status_code}): {response.text}")


def _follow(officer: httpx.Client, request: dict) -> dict:
    """Draw the request's job: its phase, its own steps and rate, an ETA from unlearning steps only."""
    label = ", ".join(request["classes"]) or f"{len(request['samples'])} samples"
    with tqdm(desc=f"forget {label}", unit="step", dynamic_ncols=True, mininterval=1.0, bar_format=BAR_FORMAT) as bar:
        while True:
            body = officer.get(f"/unlearn-requests/{request['id']}").json()
            view = progress_of(body)
            if view.total:
                bar.total, bar.n = view.total, view.step
            bar.set_postfix(postfix(view, body["status"], {}), refresh=False)
            bar.refresh()
            if body["status"] in TERMINAL:
                return body
            time.sleep(0.5)


def _report(admin: httpx.Client, results: list[dict], settings: Settings, seconds: float, *, keep_running: bool,
            model: str = MODEL) -> None:
    """What came out, with commands that work as printed and files that stay after the demo stops."""
    print()
    reports = settings.home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    key_file = reports / "signing-key.pem"
    key_file.write_text(admin.get("/signing-key").text)
    jobs = {}
    for r in results:
        what = ", ".join(r["classes"]) or f"{len(r['samples'])} samples"
        outcome = f"version {r['result_version']}" if r["status"] == "completed" else f"{r['reason']}: {r['reason_detail']}"
        shared = jobs.get(r["job"]["id"]) if r["job"] else None
        say(f"request {r['id']} ({what}): {r['status']} -> {outcome}"
            + (f" (coalesced with request {shared[:8]}: one job)" if shared else ""))
        if r["job"]:
            jobs.setdefault(r["job"]["id"], r["id"])
        document = admin.get(f"/unlearn-requests/{r['id']}/report")
        if document.status_code != 200:
            continue
        path = reports / f"{r['id']}.json"
        path.write_text(json.dumps(document.json(), indent=2))
        html = admin.get(f"/unlearn-requests/{r['id']}/report", params={"format": "html"}).text
        (reports / f"{r['id']}.html").write_text(html)
        _summarise(document.json()["body"])
        say(f"  signed report: {path} (HTML next to it); check it offline:")
        say(f"    {oblivio_command()} verify {path} --public-key {key_file}")
        _audit_proofs(admin, r["id"], reports, key_file)
        for line in after_gate_failure(r, report=str(path)):
            say(f"  next: {line}")
    say(f"versions of {model}:")
    store = make_store(settings)
    for v in admin.get(f"/models/{model}/versions").json():
        mark = "  <- current" if v["is_current"] else ""
        say(f"  v{v['version']} parent={v['parent_version']} {v['status']:<10} sha256={v['checkpoint_digest'][:16]}…{mark}")
        if v["is_current"]:
            say(f"  current generator (safetensors): {store.location(v['checkpoint_digest'])}")
    say(f"database: {settings.database_url}")
    say(f"demo finished in {seconds:.0f} s" + ("" if keep_running else "; API and worker stop now (--keep-running leaves them up)"))


def _audit_proofs(admin: httpx.Client, request_id: str, reports: Path, key_file: Path) -> None:
    """The request's receipt with its audit events' inclusion proofs, checked offline as `oblivio verify` does."""
    from service.audit.offline import verify_document
    from service.audit.signing import load_public_pem

    for _ in range(40):  # the API's sealer signs a checkpoint about every second
        receipt = admin.get(f"/unlearn-requests/{request_id}/receipt")
        if receipt.status_code != 200:
            return
        events = receipt.json()["transparency_log"]["events"]
        if events and all(e["index"] is not None for e in events):
            break
        time.sleep(0.25)
    path = reports / f"{request_id}.receipt.json"
    path.write_text(json.dumps(receipt.json(), indent=2))
    ok, reason = verify_document(receipt.json(), load_public_pem(key_file.read_bytes()))
    log = reason.rpartition("audit log: ")[2] if ok else f"NOT VERIFIED: {reason}"
    say(f"  audit log: {log.replace('events', f'events of request {request_id[:8]}', 1)}")
    say(f"    {oblivio_command()} verify {path} --public-key {key_file}")


def _dashboard(url: str, admin_key: str, settings: Settings, *, keep_running: bool) -> None:
    """Where the compliance dashboard is and the key that signs in to it (the demo's admin key)."""
    if keep_running:
        say(f"dashboard: {url}/ui/  (sign in with the admin key {admin_key})")
    else:
        say(f"dashboard: start the API again with `OBLIVIO_HOME={settings.home.resolve()} {oblivio_command()} serve "
            f"--port 8000`, open http://127.0.0.1:8000/ui/ and sign in with the admin key {admin_key} "
            f"(also in {settings.home / 'demo-admin.key'}); `make demo DEMO_ARGS=--keep-running` leaves it up")


def oblivio_command() -> str:
    """`oblivio` as this interpreter's environment installs it (its venv need not be on PATH)."""
    script = Path(sys.executable).parent / "oblivio"
    return str(script) if script.is_file() else f"{sys.executable} -m service.cli"


def _summarise(body: dict) -> None:
    """The report in a few lines: its metrics, the gate's verdict, membership, class evidence and each attempt."""
    sampler = body["job"]["family"] in SAMPLER_FAMILIES
    (_sampler_metrics if sampler else _masked_metrics)(body["metrics"])
    gate = body.get("gate") or {}
    unevaluated = ", ".join(gate.get("unevaluated_checks") or [])
    say(f"  gate: {gate.get('verdict', 'not evaluated')}" + (f" (not evaluated: {unevaluated})" if unevaluated else ""))
    verification = body.get("verification") or {}
    mia = verification.get("membership") or {}
    if "raw" in mia:
        raw, verdict = mia["raw"], mia["verdict"]
        tpr = raw["after"].get("tpr_at_1pct_fpr")  # a sampler's nearest-neighbour attack reports its AUC only
        say(f"  membership attack{' (nearest neighbour)' if sampler else ''} AUC {raw['before']['auc']:.3f} -> "
            f"{raw['after']['auc']:.3f} ({'' if tpr is None else f'TPR at 1% FPR {tpr:.3f}; '}"
            f"delta {verdict['delta_above']:.3f}): "
            f"forgotten {'yes' if verdict['forgotten'] else 'NO'}, "
            f"not over-forgotten {'yes' if verdict['not_over_forgotten'] else 'NO'}")
    evidence = verification.get("class_evidence") or {}
    if "after" in evidence and not sampler:  # a sampler's class evidence is the share its metrics line shows
        rates = ", ".join(f"{k} {evidence['before'][k]:.2f} -> {evidence['after'][k]:.2f} (visible-only "
                          f"{evidence['visible_only'][k]:.2f})" for k in evidence["after"])
        say(f"  class recognised: {rates}")
    for i, attempt in enumerate(verification.get("attempts") or [], 1):
        say(f"  attempt {i}: {attempt['steps']} of {attempt['budget']} steps, steps to verdict "
            f"{attempt['steps_to_verdict']}, {attempt['verdict']}")


def _masked_metrics(metrics: dict) -> None:
    """One line per set: feature cosine and PSNR before -> after (mean over the three mask tasks)."""
    for name, result in metrics.items():
        before, after = result["before"], result["after"]
        cos = [sum(m[t]["cosine"] for t in m) / len(m) for m in (before, after)]
        psnr = [sum(m[t]["psnr"] for t in m) / len(m) for m in (before, after)]
        say(f"  {name:<9} cosine {cos[0]:.3f} -> {cos[1]:.3f}   PSNR {psnr[0]:.2f} -> {psnr[1]:.2f} dB")


def _sampler_metrics(metrics: dict) -> None:
    """One line for a sampler, judged on fixed latent codes: the share of its samples the classifier assigns to a
    forgotten class and the retained classes' Fréchet distance, before -> after; what the job could not compute
    (no class forgotten whole, no feature network) is left out; the report's gate checks say why."""
    before, after = metrics["samples"]["before"]["generated"], metrics["samples"]["after"]["generated"]
    parts = []
    if "forgotten_class_share" in after:
        was, now = before["forgotten_class_share"], after["forgotten_class_share"]
        parts.append(f"forgotten-class share {was:.3f} -> {now:.3f}")
    if "retained_frechet" in after and before.get("retained_frechet"):
        was, now = before["retained_frechet"], after["retained_frechet"]
        parts.append(f"retained Fréchet {was:.1f} -> {now:.1f} ({now / was - 1:+.0%})")
    numbers = ", ".join(parts) or "no class share or Fréchet distance"
    say(f"  {'samples':<9} {after['n_samples']} generated from fixed codes: {numbers}")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


if __name__ == "__main__":
    sys.exit(main())
