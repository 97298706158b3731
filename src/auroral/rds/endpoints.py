"""Endpoint DNS names in AWS's forms.

Aurora names its endpoints (Amazon RDS User Guide, "Types of Aurora endpoints")::

    <cluster>.cluster-<id>.<region>.rds.amazonaws.com         cluster (writer) endpoint
    <cluster>.cluster-ro-<id>.<region>.rds.amazonaws.com      reader endpoint
    <endpoint>.cluster-custom-<id>.<region>.rds.amazonaws.com custom endpoint
    <instance>.<id>.<region>.rds.amazonaws.com                instance endpoint

``<id>`` is "a unique identifier for the customer account and region" (the docs' examples show 12
lowercase letters and digits, e.g. ``c7tj4example``). Here it is derived from a random seed kept in
the store's meta (made once per installation) with the account and region, so it is stable across
restarts and differs between installations, accounts and regions. The China regions' suffix is
``rds.amazonaws.com.cn``.

The DNS suffix is what AWS's driver wrapper matches (``RdsUtils``: ``<name>.(cluster-|cluster-ro-|
cluster-custom-)?<id>.<region>.rds.amazonaws.com``) to recognise an Aurora host, derive the instance
name template ``?.<id>.<region>.rds.amazonaws.com`` and make IAM tokens for the host.
"""

from __future__ import annotations

import hashlib
import secrets
import string

from auroral.regions import partition_of
from auroral.store import Store

SEED_META = "rds.dns-seed"
_ALPHABET = string.ascii_lowercase + string.digits


def dns_suffix(region: str) -> str:
    return "rds.amazonaws.com.cn" if partition_of(region) == "aws-cn" else "rds.amazonaws.com"


def _seed(store: Store) -> str:
    seed = store.get_meta(SEED_META)
    if seed is None:
        seed = secrets.token_hex(16)
        store.set_meta(SEED_META, seed)
    return seed


def account_region_id(store: Store, account: str, region: str) -> str:
    """The 12-character identifier of ``account`` in ``region`` (first a letter, as in AWS's names)."""
    digest = hashlib.sha256(f"{_seed(store)}\0{account}\0{region}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = [string.ascii_lowercase[number % 26]]
    number //= 26
    for _ in range(11):
        chars.append(_ALPHABET[number % 36])
        number //= 36
    return "".join(chars)


def cluster_endpoint_name(cluster: str, ident: str, region: str) -> str:
    return f"{cluster}.cluster-{ident}.{region}.{dns_suffix(region)}"


def reader_endpoint_name(cluster: str, ident: str, region: str) -> str:
    return f"{cluster}.cluster-ro-{ident}.{region}.{dns_suffix(region)}"


def custom_endpoint_name(endpoint: str, ident: str, region: str) -> str:
    return f"{endpoint}.cluster-custom-{ident}.{region}.{dns_suffix(region)}"


def instance_endpoint_name(instance: str, ident: str, region: str) -> str:
    return f"{instance}.{ident}.{region}.{dns_suffix(region)}"


def certificate_names(store: Store, account: str, region: str) -> tuple[str, ...]:
    """The DNS names an endpoint's TLS certificate covers, as AWS's do: wildcards for every instance,
    cluster, reader and custom endpoint name of the account in the region (so renames, failovers and
    new custom endpoints need no new certificate)."""
    tail = f"{account_region_id(store, account, region)}.{region}.{dns_suffix(region)}"
    return (f"*.{tail}", f"*.cluster-{tail}", f"*.cluster-ro-{tail}", f"*.cluster-custom-{tail}")
