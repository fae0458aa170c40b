"""RFC 9162 (Certificate Transparency v2) Merkle trees: hashing, proofs and their verification.

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right); a tree of n leaves splits at the
largest power of two below n (RFC 9162 §2.1.1). Proofs are the RFC's shapes exactly: an inclusion
proof is the audit path PATH(m, D[n]) of sibling hashes from the leaf upwards (§2.1.3), a consistency
proof is PROOF(m, D[n]) (§2.1.4), so any RFC 9162 / C2SP tlog verifier can check what we serve.

Why this module and not a library: `pymerkle` (7.0) hashes the same way, but its proofs are its own
(1-based indexes, a rule/subset bit layout and the base hash inside the path), it keeps the tree in
its own storage classes and recomputes subtree roots from leaves with an in-process cache. We need
the RFC proof shapes for third-party verifiers and O(log n) proofs straight from a table of stored
subtree hashes shared by several API processes. What is here is small: a tree is addressed as
perfect subtrees (level, index) covering leaves [index·2^level, (index+1)·2^level); every proof is
first planned as the list of such nodes it needs (planning needs only sizes), fetched in one query
by the caller, then assembled. The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence

Node = tuple[int, int]  # (level, index): the root of leaves [index << level, (index + 1) << level)
Range = tuple[int, int]  # leaves [start, end)


class ProofError(ValueError):
    pass


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes make MTH(D[start:end]) for a subtree of the RFC recursion."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return [(n.bit_length() - 1, start // n)]
    k = _split(n)
    return range_nodes(start, start + k) + range_nodes(start + k, end)


def range_hash(start: int, end: int, node: Callable[[int, int], bytes]) -> bytes:
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return node(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(range_hash(start, start + k, node), range_hash(start + k, end, node))


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[size]) as leaf ranges, from the leaf's sibling up to the root's child."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    out: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    return out[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """PROOF(first, D[second]) as leaf ranges (empty when first is 0 or equals second)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        return []
    out: list[Range] = []
    start, m, n, complete = 0, first, second, True
    while m != n:
        k = _split(n)
        if m <= k:
            out.append((start + k, start + n))
            n = k
        else:
            out.append((start, start + k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        out.append((start, start + m))
    return out[::-1]


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    return {node for start, end in ranges for node in range_nodes(start, end)}


def assemble(ranges: Sequence[Range], nodes: dict[Node, bytes]) -> list[bytes]:
    return [range_hash(start, end, lambda level, index: nodes[(level, index)]) for start, end in ranges]


def root(size: int, nodes: dict[Node, bytes]) -> bytes:
    return EMPTY_ROOT if size == 0 else range_hash(0, size, lambda level, index: nodes[(level, index)])


# ----- building: a compact range (the right edge of the tree) grows one leaf at a time -----


class CompactRange:
    """The perfect subtrees covering leaves [0, size): one per set bit of size, largest first."""

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()):
        if len(frontier) != bin(size).count("1"):
            raise ValueError("frontier does not match the size")
        self.size, self.frontier = size, list(frontier)

    @staticmethod
    def frontier_nodes(size: int) -> list[Node]:
        out, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns every new perfect-subtree node (level, index, hash) it completes."""
        index, level, value = self.size, 0, leaf
        new = [(0, index, leaf)]
        while index >> level & 1:  # the left sibling at this level is the frontier's last subtree
            value = node_hash(self.frontier.pop(), value)
            level += 1
            new.append((level, index >> level, value))
        self.frontier.append(value)
        self.size += 1
        return new

    def root(self) -> bytes:
        if not self.frontier:
            return EMPTY_ROOT
        value = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            value = node_hash(left, value)
        return value


# ----- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes) -> None:
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root_hash:
        raise ProofError("the inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    if not 0 <= first <= second:
        raise ProofError(f"size {first} cannot precede size {second}")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different root hashes for the same size {first}: the log forked")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != first_root:
        raise ProofError(f"the proof does not lead to the root hash of size {first}")
    if sr != second_root:
        raise ProofError(f"the proof does not lead to the root hash of size {second}")
