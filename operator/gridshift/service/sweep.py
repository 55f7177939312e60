"""Cleanup: a deleted InferenceDeployment's objects go from every member cluster, and orphans are swept.

Deletion (the kopf finalizer): the objects of an InferenceDeployment are deleted, by owner annotations,
in every cluster a RegionalCluster names, read from the hub API itself: a process that has just
started (or is not the leader) has no cluster cache yet, and trusting one let the finalizer go
while replicas kept running. Any cluster that cannot be cleaned raises `CleanupIncomplete`, so the
finalizer stays and deletion is retried.

Sweep (each leader cycle): member Deployments whose owner annotations name an InferenceDeployment
UID that is not live, confirmed against the hub API (the kopf index may still be filling after a
restart), are deleted with their Service, PodDisruptionBudget and NetworkPolicy.
"""

from __future__ import annotations

import logging

from gridshift.actuation.members import MemberError, Owner
from gridshift.api import RegionalCluster
from gridshift.api.regional_cluster import workload_namespace_for
from gridshift.hub.client import Hub, SecretMissing
from gridshift.service import inputs
from gridshift.service.errors import describe
from gridshift.service.observe import Observer
from gridshift.service.state import CycleReport, Observation

log = logging.getLogger("gridshift.service")


class CleanupIncomplete(Exception):
    """Some member cluster could not be cleaned; the finalizer must stay (the message names each cluster)."""


def delete_everywhere(hub: Hub, observer: Observer, owner: Owner) -> int:
    """Delete `owner`'s objects from every RegionalCluster's member cluster; CleanupIncomplete if any failed."""
    deleted = 0
    failures: list[str] = []
    for parsed in inputs.parse_bodies(hub.regional_clusters(), RegionalCluster):
        if parsed.resource is None:
            failures.append(f"RegionalCluster {parsed.key} is invalid ({parsed.error}): its cluster cannot be cleaned")
            continue
        namespace = workload_namespace_for(parsed.resource.spec, owner.namespace)
        try:
            member = observer.member(parsed.key, parsed.resource)
            count = member.delete_deployment_objects(owner, [namespace])
        except (MemberError, SecretMissing) as error:
            failures.append(str(error))
            continue
        except Exception as error:  # an adapter bug: keep the finalizer, never quote what failed
            failures.append(f"cluster {parsed.key}: {describe(error)}")
            continue
        deleted += count
        log.info("deleted %d objects of %s in %s", count, owner, parsed.key)
    if failures:
        raise CleanupIncomplete(f"{owner}: not cleaned up yet, will retry: " + "; ".join(failures))
    return deleted


def sweep_orphans(hub: Hub, seen: Observation, report: CycleReport) -> int:
    """Delete the objects of owners that no longer exist on the hub; returns how many objects went."""
    deleted = 0
    for view in seen.views.values():
        if view.member is None or not view.orphans:
            continue
        for orphan in view.orphans:
            owner = Owner(orphan.deployment_namespace, orphan.deployment_name, orphan.owner_uid)
            try:
                if hub.deployment_uid(owner.namespace, owner.name) == owner.uid:
                    continue  # live after all (this process's index is behind the hub)
                deleted += view.member.delete_deployment_objects(owner, [orphan.namespace])
                report.member_writes += 1
                log.info("swept orphaned objects of %s (uid %s) in %s", owner, owner.uid, view.name)
            except (MemberError, SecretMissing) as error:
                report.errors.append(f"sweeping {owner} in {view.name}: {error}")
            except Exception as error:
                report.errors.append(f"sweeping {owner} in {view.name}: {describe(error)}")
    return deleted
