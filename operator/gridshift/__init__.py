"""gridshift: place vLLM replicas across regional clusters to minimise dollars per token within SLOs."""

__version__ = "0.1.0"
