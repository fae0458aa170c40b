"""The transparency log's entries and every check on it that needs no database: pure data in, verdicts out.

A leaf's entry is the canonical JSON of its event with its leaf index:
    {"index", "at", "actor", "action", "subject", "data"}  (+ "chain": {"prev_hash", "hash"} for events
    written before the tree, whose hash chain the tree now covers)
leaf hash = SHA-256(0x00 ‖ canonical JSON), as RFC 9162 hashes leaves. The same functions check a
receipt's inclusion proofs, a pair of checkpoints, an export and the live database.
"""

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.audit import merkle
from service.audit.canonical import canonical_bytes, digest
from service.audit.note import Checkpoint, NoteError, parse_checkpoint, verify_checkpoint

GENESIS = "0" * 64


def entry(*, index: int, at: str, actor: str, action: str, subject: str, data: dict[str, Any],
          prev_hash: str | None = None, hash: str | None = None) -> dict[str, Any]:  # fmt: skip
    out = {"index": index, "at": at, "actor": actor, "action": action, "subject": subject, "data": data}
    if hash is not None:
        out["chain"] = {"prev_hash": prev_hash, "hash": hash}
    return out


def entry_leaf_hash(value: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_bytes(value))


def chain_hash(value: dict[str, Any], prev_hash: str) -> str:
    """The pre-tree hash chain's link (service.audit.chain before the tree): seq was index + 1."""
    return digest({"seq": value["index"] + 1, "at": value["at"], "actor": value["actor"], "action": value["action"],
                   "subject": value["subject"], "data": value["data"], "prev_hash": prev_hash})


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def unb64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise merkle.ProofError(f"not base64: {exc}") from None


@dataclass(frozen=True)
class LogCheck:
    ok: bool
    checked: int
    first_bad_index: int | None = None
    reason: str | None = None
    size: int = 0
    checkpoints: int = 0


def verify_log(
    leaves: Iterable[tuple[dict[str, Any], bytes | None]],
    checkpoints: Sequence[str],
    public_key: Ed25519PublicKey | None,
) -> LogCheck:
    """Re-derive the tree from its entries in index order and compare it with every signed checkpoint.

    `leaves`: (entry, the leaf hash stored when it was sealed, or None). The first bad index is named:
    a missing or out-of-place index, an entry that no longer hashes to its sealed leaf (edited), a broken
    pre-tree chain link, or the first leaf after the last checkpoint that still matched (when the stored
    hashes were rewritten too). Two checkpoints of one size with different roots are a fork.
    """
    parsed: dict[int, Checkpoint] = {}
    for text in checkpoints:
        try:
            cp = verify_checkpoint(text, public_key) if public_key is not None else parse_checkpoint(text)
        except NoteError as exc:
            return LogCheck(False, 0, None, f"a checkpoint does not verify: {exc}")
        if cp.size in parsed and parsed[cp.size].root != cp.root:
            return LogCheck(False, 0, max(cp.size - 1, 0), f"two checkpoints of size {cp.size} with different roots: the log forked")
        parsed[cp.size] = cp
    sizes = sorted(parsed)
    tree, checked, prev_chain, verified_upto = merkle.CompactRange(), 0, GENESIS, 0
    pending = iter(sizes)
    target = next(pending, None)
    while target == 0:
        target = next(pending, None)
    for value, stored in leaves:
        index = tree.size
        if value.get("index") != index:
            return LogCheck(False, checked, index, f"leaf {index} is missing or out of place (found index {value.get('index')})",
                            tree.size, len(parsed))  # fmt: skip
        recomputed = entry_leaf_hash(value)
        if stored is not None and stored != recomputed:
            return LogCheck(False, checked, index, "the event does not hash to its sealed leaf (row edited)", tree.size, len(parsed))
        chain = value.get("chain")
        if chain is not None:
            if chain.get("prev_hash") != prev_chain or chain_hash(value, prev_chain) != chain.get("hash"):
                return LogCheck(False, checked, index, "the pre-tree hash chain breaks here", tree.size, len(parsed))
            prev_chain = chain["hash"]
        tree.append(stored if stored is not None else recomputed)
        checked += 1
        if tree.size == target:
            if tree.root() != parsed[target].root:
                return LogCheck(False, checked, verified_upto,
                                f"the leaves from {verified_upto} on do not give the root of the signed checkpoint of size {target}",
                                tree.size, len(parsed))  # fmt: skip
            verified_upto, target = target, next(pending, None)
    if target is not None:
        return LogCheck(False, checked, tree.size, f"a checkpoint of size {target} is signed but the log ends at {tree.size}",
                        tree.size, len(parsed))  # fmt: skip
    return LogCheck(True, checked, None, None, tree.size, len(parsed))


def verify_inclusions(log: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[bool, str, Checkpoint | None]:
    """A receipt's `transparency_log` section: the checkpoint's signature, then every event's proof."""
    try:
        checkpoint = verify_checkpoint(log["checkpoint"], public_key)
        events = log["events"]
        sealed = [e for e in events if e.get("index") is not None]
        for event in sealed:
            value = event["entry"]
            if value.get("index") != event["index"]:
                raise merkle.ProofError(f"event {event['index']}: the entry names index {value.get('index')}")
            proof = [unb64(p) for p in event["inclusion_proof"]]
            try:
                merkle.verify_inclusion(event["index"], checkpoint.size, entry_leaf_hash(value), proof, checkpoint.root)
            except merkle.ProofError as exc:
                raise merkle.ProofError(f"event {event['index']}: {exc}") from None
    except NoteError as exc:
        return False, f"checkpoint: {exc}", None
    except merkle.ProofError as exc:
        return False, str(exc), None
    except (KeyError, TypeError, AttributeError) as exc:
        return False, f"malformed transparency_log section: {exc!r}", None
    unsealed = len(events) - len(sealed)
    why = f"{len(sealed)} events included in checkpoint size {checkpoint.size} (verified)"
    return True, why + (f"; {unsealed} not sealed yet" if unsealed else ""), checkpoint


def verify_consistency_notes(
    old_text: str, new_text: str, proof: Sequence[str], public_key: Ed25519PublicKey
) -> tuple[bool, str]:
    """Two signed checkpoints of one log and the consistency proof between them."""
    try:
        old, new = verify_checkpoint(old_text, public_key), verify_checkpoint(new_text, public_key)
        if old.origin != new.origin:
            return False, f"checkpoints of two logs: {old.origin} and {new.origin}"
        if old.size > new.size:
            old, new = new, old
        merkle.verify_consistency(old.size, new.size, old.root, new.root, [unb64(p) for p in proof])
    except NoteError as exc:
        return False, f"checkpoint: {exc}"
    except merkle.ProofError as exc:
        return False, str(exc)
    return True, f"checkpoint size {new.size} extends checkpoint size {old.size} (consistent)"
