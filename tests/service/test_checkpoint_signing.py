"""Checkpoint signatures in the OpenSSF model-signing format, checked by that package's own CLI."""

import subprocess
import sys
from pathlib import Path

from service.audit.checkpoint_signing import sign_checkpoint, verify_checkpoint
from service.audit.model_keys import model_signing_public_pem


def cli_verify(model: Path, signature: Path, key: Path) -> int:
    command = [str(Path(sys.executable).with_name("model_signing")), "verify", "key", "--signature", str(signature),
               "--public_key", str(key), str(model)]
    return subprocess.run(command, capture_output=True, timeout=120).returncode


def test_a_signed_checkpoint_verifies_with_model_signing_and_a_changed_one_does_not(tmp_path):
    key_file = tmp_path / "keys" / "model-signing-key.pem"
    data = bytes(range(256)) * 4096
    bundle = sign_checkpoint(data, key_file=key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = tmp_path / "public.pem"
    public.write_text(model_signing_public_pem(key_file))
    model, signature = tmp_path / "fmnist-mae-v2.safetensors", tmp_path / "v2.sig"
    model.write_bytes(data)
    signature.write_bytes(bundle)
    assert cli_verify(model, signature, public) == 0
    assert verify_checkpoint(model, signature, public)[0] is True

    model.write_bytes(data[:-1] + b"\x00")  # one byte changed
    assert cli_verify(model, signature, public) != 0
    assert verify_checkpoint(model, signature, public)[0] is False


def test_processes_racing_to_create_the_key_all_end_up_with_one(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "keys" / "model-signing-key.pem"
    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(lambda _: model_signing_public_pem(path), range(32)))  # what each caller was served
    assert seen == {model_signing_public_pem(path)}
    assert path.stat().st_mode & 0o777 == 0o600 and [p.name for p in path.parent.iterdir()] == [path.name]
