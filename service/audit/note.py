"""Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note), Ed25519.

    oblivio.local/audit-log          origin: names the log, also the key name
    1234                             tree size, decimal
    3q2+7w...=                       base64 of the RFC 9162 root hash
    time 2026-12-03T22:40:05+00:00   extension line: when the sealer signed it (ignored by other tools)

    — oblivio.local/audit-log <base64(key id (4 bytes) ‖ Ed25519 signature of the text above)>

The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ raw public key), as the signed-note
spec defines it for Ed25519; the signature covers the note text including its final newline.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.audit.signing import Signer

DASH = "\u2014 "


class NoteError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime | None
    text: str  # the whole signed note

    @property
    def body(self) -> str:
        return self.text.rpartition("\n\n")[0] + "\n"


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key text: name+hex(key id)+base64(0x01 ‖ public key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    encoded = base64.b64encode(b"\x01" + raw).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def sign_checkpoint(signer: Signer, *, origin: str, size: int, root: bytes, time: datetime) -> str:
    if not origin or any(c.isspace() or c == "+" for c in origin):
        raise NoteError(f"bad origin {origin!r}: no spaces, no '+'")
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time.isoformat()}\n"
    signature = key_id(origin, signer.public_key) + signer.sign_bytes(body.encode())
    return f"{body}\n{DASH}{origin} {base64.b64encode(signature).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    body, sep, signatures = text.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    lines = (body + "\n").split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("a checkpoint has at least an origin, a size and a root hash")
    origin, size, root_b64, *extensions = lines
    if not size.isdigit() or (size.startswith("0") and size != "0"):
        raise NoteError(f"bad tree size {size!r}")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"bad root hash: {exc}") from None
    if len(root) != 32:
        raise NoteError("the root hash is not 32 bytes")
    when = None
    for line in extensions:
        if line.startswith("time "):
            try:
                when = datetime.fromisoformat(line[5:])
            except ValueError:
                raise NoteError(f"bad time line {line!r}") from None
    return Checkpoint(origin=origin, size=int(size), root=root, time=when, text=text)


def verify_checkpoint(text: str, public_key: Ed25519PublicKey, *, origin: str | None = None) -> Checkpoint:
    """Parse a checkpoint and check the log's signature on it (key name = origin); raises NoteError."""
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint of log {checkpoint.origin!r}, not of {origin!r}")
    name, wanted = checkpoint.origin, key_id(checkpoint.origin, public_key)
    for line in text.rpartition("\n\n")[2].splitlines():
        if not line.startswith(DASH):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        signer_name, _, value = line[len(DASH):].partition(" ")
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise NoteError("malformed signature line: not base64") from None
        if signer_name != name or raw[:4] != wanted:
            continue  # another signer (a witness): not ours to check
        try:
            public_key.verify(raw[4:], checkpoint.body.encode())
        except InvalidSignature:
            raise NoteError("the checkpoint's signature does not verify: the text was changed or not signed by this key") from None
        return checkpoint
    raise NoteError(f"no signature by {name} with this public key (key id {wanted.hex()})")
