"""The dcgm-exporter series the world writes: names, help texts and the label layout of a real exporter.

From shared/data/metrics-scrapes/dcgm_*.prom (dcgm-exporter with Kubernetes pod mapping): each GPU
has `gpu, UUID, pci_bus_id, device, modelName, Hostname, DCGM_FI_DRIVER_VERSION`, and a GPU held
by a pod adds `container, namespace, pod, pod_uid`.
"""

from __future__ import annotations

POWER_USAGE = ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "gauge")
TOTAL_ENERGY = ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).", "counter")
GPU_UTIL = ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "gauge")
DRIVER_VERSION = "580.105.08"
"""The driver of the recorded H100 scrape."""
