"""Replication under faults, the long run of issue 13 (`make torture`): 50 random fault cycles
(tests/integration/torture.py) on a 3-node cluster with 3 etcd members, 8 partitions, RF 3,
min.insync.replicas=2, idempotent acks=all producers from confluent-kafka and kafkajs; after every
cycle and at the end the whole history is checked (history.py), replicas are compared byte for byte
and failover times bounded by broker.session.timeout.ms + 1 s.

Knobs: SAMSA_REPLICATION_CYCLES (50), SAMSA_TORTURE_SEED (random; printed first, replays a run).
Figures are printed as "FIGURE name value" lines like the other reliability runs."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from cluster import HAVE_ETCD, etcd_cluster, etcd_cluster_factory, samsa_cluster_factory  # noqa: E402,F401
from torture import OVERRIDES, ReplicationUnsupported, run_torture  # noqa: E402

CYCLES = int(os.environ.get("SAMSA_REPLICATION_CYCLES", "50"))

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed (scripts/install-deps.sh)")


def figure(name, value):
    print(f"FIGURE {name} {value}", flush=True)


@pytest.mark.timeout(max(600, CYCLES * 60) + 300)
def test_replication_torture(samsa_cluster_factory):
    c = samsa_cluster_factory(3, overrides=OVERRIDES)
    try:
        t = run_torture(c, cycles=CYCLES, deadline_s=max(600, CYCLES * 60))
    except ReplicationUnsupported as e:
        pytest.skip(f"replication factor 3 refused (replication not landed yet): {e}")
    f = t.figures()
    for k in ("seed", "cycles", "seconds", "sent", "acknowledged", "failed", "records_checked", "reads",
              "failover_metadata_max_s"):
        figure(f"replication_{k}", f[k])
    figure("replication_faults", ",".join(f["faults"]))
    assert f["cycles"] == CYCLES
