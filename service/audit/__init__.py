"""Proof of forgetting: canonical JSON, Ed25519 signatures, the hash-chained audit log, reports."""
