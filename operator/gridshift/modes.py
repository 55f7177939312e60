"""Words shared by the API and the planner: the one enum both speak.

`MigrationMode` is a field of InferenceDeployment (gridshift.api) and an input of the planner, which
must not import the API's wire models; it lives here, below both, so the service translates nothing
and `plan.mode is MigrationMode.AUTO` holds wherever it is tested.
"""

from __future__ import annotations

from enum import StrEnum


class MigrationMode(StrEnum):
    """How far the operator may act on its plans."""

    AUTO = "Auto"
    ADVISORY = "Advisory"
    FROZEN = "Frozen"
