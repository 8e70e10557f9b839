"""The test LXD cluster (tests/env/cluster-up.sh): where its start-up script lives, for the
cluster test modules (test_cluster, test_cluster_faults)."""

from __future__ import annotations

from conftest import REPO_ROOT

CLUSTER_UP = REPO_ROOT / "tests" / "env" / "cluster-up.sh"
