"""Member-cluster actuation: clients from kubeconfig Secrets, rendering and server-side apply of workloads."""
