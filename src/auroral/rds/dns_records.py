"""The DNS records of an account's Aurora endpoints in one region, for the resolver (``auroral.dns``).

As Route 53 serves them for Aurora:

* each instance name (``<instance>.<id>.<region>.rds.amazonaws.com``) has an A record: the address its
  endpoint listens on (the loopback address of its network interface, ``rds/addresses.py``), once it
  has one;
* the cluster endpoint (``<cluster>.cluster-<id>...``) is a CNAME to the writer instance's name;
* the reader endpoint (``<cluster>.cluster-ro-<id>...``) is a CNAME to each available reader's name (a
  rotation set: the resolver answers one at a time), or to the writer's when there is no available
  reader, as Aurora's reader endpoint then connects to the writer;
* a custom endpoint (``<endpoint>.cluster-custom-<id>...``) is a CNAME to each instance it may reach now
  (``ClusterEndpointOperations.custom_endpoint_members``); with none it does not resolve.

:class:`EndpointRecords` hands the whole set to the zone, under one owner per account and region
(``rds:<account>:<region>``), whenever an instance, cluster or custom endpoint is saved or dropped (an
endpoint opened or closed, a writer changed, a rename, a member list changed); the zone ignores a set
that did not change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from auroral.dns.records import CNAME, A, InvalidRecord, Record
from auroral.rds.endpoints import cluster_endpoint_name, instance_endpoint_name, reader_endpoint_name
from auroral.rds.model import Cluster, Instance

log = logging.getLogger(__name__)

# Instance statuses in which a reader with an address is a reader endpoint member: serving, or about to
# (its endpoint opens, and its address is saved and published, just before it is reported available:
# so the reader endpoint resolves to it by the time a waiter sees it available).
_SERVING = frozenset({"available", "modifying", "backing-up", "creating", "rebooting", "renaming", "starting"})


class RecordSink(Protocol):
    """Where records go (``auroral.dns.records.Zone``)."""

    def replace(self, owner: str, records: Mapping[str, Sequence[Record]]) -> None: ...


def owner_of(account: str, region: str) -> str:
    return f"rds:{account}:{region}"


def endpoint_records(ident: str, region: str, clusters: Iterable[Cluster], instances: Iterable[Instance],
                     custom: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> dict[str, list[Record]]:
    """Every record of the clusters' endpoints (``ident``: the account's id in the region; ``custom``:
    per cluster identifier, each custom endpoint's DNS name -> the instance identifiers it reaches)."""
    by_cluster: dict[str, list[Instance]] = {}
    records: dict[str, list[Record]] = {}
    for instance in instances:
        by_cluster.setdefault(instance.cluster_identifier, []).append(instance)
        if instance.address and instance.status != "deleting":
            records[instance_endpoint_name(instance.identifier, ident, region)] = [A(instance.address)]
    for cluster in clusters:
        members = [m for m in by_cluster.get(cluster.identifier, ())
                   if instance_endpoint_name(m.identifier, ident, region) in records]
        writer = next((m for m in members if m.is_writer), None)
        if writer is not None:
            records[cluster_endpoint_name(cluster.identifier, ident, region)] = [
                CNAME(instance_endpoint_name(writer.identifier, ident, region))]
        readers = sorted((m for m in members if not m.is_writer and m.status in _SERVING),
                         key=lambda m: m.identifier)
        targets = readers or ([writer] if writer is not None else [])
        if targets:
            records[reader_endpoint_name(cluster.identifier, ident, region)] = [
                CNAME(instance_endpoint_name(m.identifier, ident, region)) for m in targets]
        for name, reach in (custom or {}).get(cluster.identifier, {}).items():
            names = [instance_endpoint_name(m, ident, region) for m in reach]
            cnames: list[Record] = [CNAME(n) for n in names if n in records]
            if cnames:
                records[name] = cnames
    return records


def publish(sink: RecordSink, account: str, region: str, ident: str, clusters: Iterable[Cluster],
            instances: Iterable[Instance], custom: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
    """Replace the account's records in the region with the ones its clusters have now."""
    try:
        sink.replace(owner_of(account, region), endpoint_records(ident, region, clusters, instances, custom))
    except InvalidRecord as exc:  # identifiers are valid labels: a bug, but never a failed API call
        log.error("DNS records of %s in %s not published: %s", account, region, exc)
