"""Fakes of every adapter the service uses, for unit tests and the simulator; never imported by production code.

Each fake passes the same contract suite as its real adapter (tests/actuation/test_member_contract.py,
tests/signals/test_metrics_contract.py, tests/signals/test_feed_contract.py ...), as Karpenter keeps
its fake cloud provider in `cloudprovider/fake`. An import-linter contract keeps production modules
from importing this package.
"""

from gridshift.testing.carbon import FakeCarbonFeed
from gridshift.testing.hub import FakeHub, merge_patch
from gridshift.testing.members import FakeMemberCluster
from gridshift.testing.metrics import FakeMetricsSource
from gridshift.testing.prices import FakePriceFeed

__all__ = ["FakeCarbonFeed", "FakeHub", "FakeMemberCluster", "FakeMetricsSource", "FakePriceFeed", "merge_patch"]
