"""Cluster fixtures live in tests/conftest.py (one session world for every directory); see e2e/cluster/README.md."""
