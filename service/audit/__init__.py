"""Proof of forgetting: canonical JSON, Ed25519 signatures, the audit log as a Merkle-tree transparency log, reports."""
