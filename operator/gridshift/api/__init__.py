"""The gridshift.dev/v1alpha1 API: pydantic models, the one source of the CRDs."""

from gridshift.api.base import API_VERSION, GROUP, VERSION
from gridshift.api.gpu_profile import GPUProfile, GPUProfileSpec, ProfilePoint
from gridshift.api.inference_deployment import (
    InferenceDeployment,
    InferenceDeploymentSpec,
    InferenceDeploymentStatus,
)
from gridshift.api.regional_cluster import (
    PriceFeedSpec,
    PriceFeedType,
    RegionalCluster,
    RegionalClusterSpec,
    RegionalClusterStatus,
)
from gridshift.modes import MigrationMode

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "GPUProfile",
    "GPUProfileSpec",
    "InferenceDeployment",
    "InferenceDeploymentSpec",
    "InferenceDeploymentStatus",
    "MigrationMode",
    "PriceFeedSpec",
    "PriceFeedType",
    "ProfilePoint",
    "RegionalCluster",
    "RegionalClusterSpec",
    "RegionalClusterStatus",
]
