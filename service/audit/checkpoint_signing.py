"""Checkpoints signed in the OpenSSF model-signing format (a Sigstore bundle over a DSSE envelope).

``model_signing verify key --signature <sig> --public_key <pem> <checkpoint>`` (the package's own
command) accepts what ``sign_checkpoint`` produces; ``verify_checkpoint`` is the same check in
Python for ``oblivio verify``. The signed manifest holds the file's digest, not its name, so a
downloaded checkpoint verifies under any file name.
"""

import tempfile
from pathlib import Path

import model_signing

from service.audit.model_keys import ensure_model_signing_key


def sign_checkpoint(data: bytes, *, key_file: Path) -> bytes:
    """The model-signing bundle (JSON bytes) for checkpoint ``data``."""
    key = ensure_model_signing_key(key_file)
    with tempfile.TemporaryDirectory() as tmp:
        model, signature = Path(tmp) / "checkpoint.safetensors", Path(tmp) / "checkpoint.sig"
        model.write_bytes(data)
        model_signing.signing.Config().use_elliptic_key_signer(private_key=key).sign(model, signature)
        return signature.read_bytes()


def verify_checkpoint(model: Path, signature: Path, public_key: Path) -> tuple[bool, str]:
    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(model, signature)
    except ValueError as exc:
        return False, f"model signature does not verify: {exc}"
    return True, "model signature valid (OpenSSF model-signing, EC key)"
