"""Pinned versions of every binary the test clusters are built from.

Changing any of these changes the cache key, so a fresh build lands in a new
``~/.cache/gridshift/bin/<key>/`` directory and old caches are never mixed in.
"""

from __future__ import annotations

import hashlib

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
HELM = "v3.21.4"
CLI_UTILS = "v0.37.2"
"""sigs.k8s.io/cli-utils, whose kstatus library kstatus-check is built from. Not in the cache key: the binary
reports the version it was built with, and a different one is rebuilt alone (build._works)."""

# Bump when the build recipe itself changes (flags, tags, ...).
RECIPE = "1"


def version_key() -> str:
    raw = f"k8s-{KUBERNETES}_etcd-{ETCD}_kwok-{KWOK}_helm-{HELM}_r{RECIPE}"
    return raw


def short_hash() -> str:
    return hashlib.sha256(version_key().encode()).hexdigest()[:8]
