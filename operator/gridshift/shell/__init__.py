"""kopf handlers: translate Kubernetes events into service calls, nothing more."""
