"""Ed25519 signing of report bodies, and offline verification.

The private key comes from OBLIVIO_SIGNING_KEY_FILE (PEM, PKCS#8). In the embedded default a key
is generated there on first use. The key id is the sha256 of the raw public key, shortened.
"""

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.audit.canonical import canonical_bytes

ALGORITHM = "Ed25519"


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> "Signer":
        if not path.is_file():
            if not create:
                raise FileNotFoundError(f"signing key {path} not found")
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)
            path.chmod(0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, body: dict[str, Any]) -> dict[str, str]:
        signature = self.sign_bytes(canonical_bytes(body))
        return {"algorithm": ALGORITHM, "key_id": self.key_id, "value": base64.b64encode(signature).decode()}

    def sign_bytes(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_pem(self) -> str:
        return public_pem(self.public_key)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify_signed(document: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[bool, str]:
    """Check a signed report document {"body": …, "signature": {...}}; returns (ok, reason)."""
    try:
        body, signature = document["body"], document["signature"]
        if signature.get("algorithm") != ALGORITHM:
            return False, f"unsupported algorithm {signature.get('algorithm')!r}"
        if signature.get("key_id") != key_id(public_key):
            return False, f"signed by key {signature.get('key_id')}, not by {key_id(public_key)}"
        public_key.verify(base64.b64decode(signature["value"], validate=True), canonical_bytes(body))
    except InvalidSignature:
        return False, "signature does not match the body"
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"malformed report document: {exc}"
    return True, "signature valid"
