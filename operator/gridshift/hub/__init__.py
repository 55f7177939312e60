"""The hub cluster as the service sees it: Secrets, status writes, Events and the leader Lease."""
