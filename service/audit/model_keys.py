"""The EC P-256 key that signs published checkpoints (OpenSSF model-signing accepts only NIST curves).

Separate from the Ed25519 report key: model-signing's key signer takes a PEM file of a P-256/384/521
key. Created on first use in the embedded default, like the report key.
"""

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_NAME = "model-signing.sig"  # the derived artifact beside a checkpoint blob


def ensure_model_signing_key(path: Path) -> Path:
    """The private key file at ``path``, generated (mode 0600) when missing.

    API and workers may share the file (one volume) and ask for it at the same moment: the key is
    written to a private temporary file and linked into place, so the first one wins and every
    process reads that one, never a half-written or second key.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-signing-")  # created 0600
    try:
        os.write(fd, pem)
        os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process linked its key first: use that one
    finally:
        os.unlink(tmp)
    return path


def model_signing_public_pem(path: Path) -> str:
    key = serialization.load_pem_private_key(ensure_model_signing_key(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an elliptic-curve private key")
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
