"""Custom cluster endpoints end to end with unmodified boto3 and the AWS CLI against a running auroral:
the lifecycle and its states, AWS's errors (code, message, HTTP status), the quota, filters and paging,
tags by ARN, DescribeDBClusters' CustomEndpoints, what deleting an instance or the cluster does, and IAM
policies on the cluster-endpoint ARN."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server

from .e2e_helpers import FAST, Db, create_db, delete_db, ident, until, wait_cluster_gone, wait_instance_gone

REGION = "us-east-1"
_DNS = r"{}\.cluster-custom-[a-z][a-z0-9]{{11}}\.us-east-1\.rds\.amazonaws\.com"


@pytest.fixture(scope="module")
def rds(server: Server) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def db(rds: Any) -> Iterator[Db]:
    """A cluster with a writer and two readers (every custom endpoint test shares it)."""
    made = create_db(rds, prefix="cep")
    readers = [f"{made.cluster_id}-r{i}" for i in (1, 2)]
    for reader in readers:
        rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=made.cluster_id,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    for reader in readers:
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=reader, WaiterConfig=FAST)
    try:
        yield made
    finally:
        for reader in readers:
            with contextlib.suppress(ClientError):
                rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        for reader in readers:
            wait_instance_gone(rds, reader)
        delete_db(rds, made)


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def _available(rds: Any, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = rds.describe_db_cluster_endpoints(DBClusterEndpointIdentifier=name)["DBClusterEndpoints"]
        return found[0] if found and found[0]["Status"] == "available" else None

    result: dict[str, Any] = until(check, what=f"{name} available")
    return result


def _gone(rds: Any, name: str) -> None:
    until(lambda: rds.describe_db_cluster_endpoints(DBClusterEndpointIdentifier=name)["DBClusterEndpoints"] == [],
          what=f"{name} deleted")


def _delete(rds: Any, *names: str) -> None:
    for name in names:
        rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier=name)
    for name in names:
        _gone(rds, name)


def test_lifecycle(server: Server, rds: Any, db: Db) -> None:
    name = ident("cep-life")
    created = rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id.upper(),
                                             DBClusterEndpointIdentifier=name.upper(), EndpointType="reader",
                                             Tags=[{"Key": "team", "Value": "bi"}])
    arn = f"arn:aws:rds:{REGION}:{server.account}:cluster-endpoint:{name}"
    assert created["Status"] == "creating"
    assert created["DBClusterEndpointIdentifier"] == name and created["DBClusterIdentifier"] == db.cluster_id
    assert created["EndpointType"] == "CUSTOM" and created["CustomEndpointType"] == "READER"
    assert created["StaticMembers"] == [] and created["ExcludedMembers"] == []
    assert created["DBClusterEndpointArn"] == arn
    assert re.fullmatch(r"cluster-endpoint-[A-Z0-9]{26}", created["DBClusterEndpointResourceIdentifier"])
    assert re.fullmatch(_DNS.format(re.escape(name)), created["Endpoint"])

    available = _available(rds, name)
    assert {k: v for k, v in available.items() if k != "Status"} == {
        k: v for k, v in created.items() if k not in ("Status", "ResponseMetadata")}
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    assert created["Endpoint"] in cluster["CustomEndpoints"]

    listed = rds.describe_db_cluster_endpoints(DBClusterIdentifier=db.cluster_id)["DBClusterEndpoints"]
    writer, reader = listed[0], listed[1]
    assert writer["EndpointType"] == "WRITER" and reader["EndpointType"] == "READER"
    assert set(writer) == {"Endpoint", "Status", "DBClusterIdentifier", "EndpointType"}
    assert re.fullmatch(rf"{db.cluster_id}\.cluster-[a-z0-9]{{12}}\.us-east-1\.rds\.amazonaws\.com",
                        writer["Endpoint"])
    assert reader["Endpoint"] == writer["Endpoint"].replace(".cluster-", ".cluster-ro-", 1)
    assert [e["DBClusterEndpointIdentifier"] for e in listed[2:]].count(name) == 1

    reader1 = f"{db.cluster_id}-r1"
    modified = rds.modify_db_cluster_endpoint(DBClusterEndpointIdentifier=name, StaticMembers=[reader1.upper()],
                                              EndpointType="ANY")
    assert modified["Status"] == "modifying" and modified["StaticMembers"] == [reader1]
    assert modified["CustomEndpointType"] == "ANY"
    assert _available(rds, name)["StaticMembers"] == [reader1]
    # an empty list changes nothing (AWS: boto/boto3#3058); the other list replaces the first
    rds.modify_db_cluster_endpoint(DBClusterEndpointIdentifier=name, ExcludedMembers=[])
    assert _available(rds, name)["StaticMembers"] == [reader1]
    rds.modify_db_cluster_endpoint(DBClusterEndpointIdentifier=name, ExcludedMembers=[reader1])
    switched = _available(rds, name)
    assert switched["StaticMembers"] == [] and switched["ExcludedMembers"] == [reader1]

    assert rds.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "team", "Value": "bi"}]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "env", "Value": "prod"}])
    rds.remove_tags_from_resource(ResourceName=arn, TagKeys=["team"])
    assert rds.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "env", "Value": "prod"}]

    deleted = rds.delete_db_cluster_endpoint(DBClusterEndpointIdentifier=name)
    assert deleted["Status"] == "deleting" and deleted["DBClusterEndpointArn"] == arn
    _gone(rds, name)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    assert created["Endpoint"] not in cluster["CustomEndpoints"]
    with pytest.raises(ClientError) as info:
        rds.list_tags_for_resource(ResourceName=arn)
    assert _error(info)[0] == "DBClusterEndpointNotFoundFault"


def test_errors(rds: Any, db: Db) -> None:
    cid = db.cluster_id
    name = ident("cep-err")
    cases: list[tuple[str, dict[str, Any], tuple[str, str, int]]] = [
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": cid, "DBClusterEndpointIdentifier": "1bad",
                                        "EndpointType": "ANY"},
         ("InvalidParameterValue", "The parameter DBClusterEndpointIdentifier is not a valid identifier. "
          "Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must "
          "not end with a hyphen or contain two consecutive hyphens.", 400)),
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": cid, "DBClusterEndpointIdentifier": name,
                                        "EndpointType": "WRITER"},
         ("InvalidParameterValue", "Endpoint type not supported by the cluster", 400)),
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": cid, "DBClusterEndpointIdentifier": name,
                                        "EndpointType": "CUSTOM"},
         ("InvalidParameterValue", "Invalid endpoint type: CUSTOM. The endpoint type must be one of: READER, ANY.",
          400)),
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": cid, "DBClusterEndpointIdentifier": name,
                                        "EndpointType": "ANY", "StaticMembers": [db.instance_id],
                                        "ExcludedMembers": [f"{cid}-r1"]},
         ("InvalidParameterCombination", "StaticMembers and ExcludedMembers can't both be specified.", 400)),
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": "cep-nope", "DBClusterEndpointIdentifier": name,
                                        "EndpointType": "ANY"},
         ("DBClusterNotFoundFault", "DBCluster cep-nope not found.", 404)),
        ("create_db_cluster_endpoint", {"DBClusterIdentifier": cid, "DBClusterEndpointIdentifier": name,
                                        "EndpointType": "ANY", "StaticMembers": ["cep-no-such-instance"]},
         ("DBInstanceNotFound", "DBInstance cep-no-such-instance not found.", 404)),
        ("modify_db_cluster_endpoint", {"DBClusterEndpointIdentifier": "cep-nope"},
         ("DBClusterEndpointNotFoundFault", "DBClusterEndpoint cep-nope not found.", 400)),
        ("modify_db_cluster_endpoint", {"DBClusterEndpointIdentifier": "cep-nope", "EndpointType": "WRITER"},
         ("DBClusterEndpointNotFoundFault", "DBClusterEndpoint cep-nope not found.", 400)),
        ("delete_db_cluster_endpoint", {"DBClusterEndpointIdentifier": "cep-nope"},
         ("DBClusterEndpointNotFoundFault", "DBClusterEndpoint cep-nope not found.", 400)),
        ("describe_db_cluster_endpoints", {"DBClusterIdentifier": "cep-nope"},
         ("DBClusterNotFoundFault", "DBCluster cep-nope not found.", 404)),
        ("describe_db_cluster_endpoints", {"Filters": [{"Name": "engine", "Values": ["x"]}]},
         ("InvalidParameterValue", "Unrecognized filter name: engine", 400)),
        ("describe_db_cluster_endpoints", {"MaxRecords": 5},
         ("InvalidParameterValue", "Invalid value 5 for MaxRecords. Must be between 20 and 100", 400)),
    ]
    for method, params, expected in cases:
        with pytest.raises(ClientError) as info:
            getattr(rds, method)(**params)
        assert _error(info) == expected, (method, params)
    assert rds.describe_db_cluster_endpoints(DBClusterEndpointIdentifier=name)["DBClusterEndpoints"] == []

    rds.create_db_cluster_endpoint(DBClusterIdentifier=cid, DBClusterEndpointIdentifier=name, EndpointType="ANY")
    with pytest.raises(ClientError) as info:  # the name is taken in the account and region, for any cluster
        rds.create_db_cluster_endpoint(DBClusterIdentifier=cid, DBClusterEndpointIdentifier=name.upper(),
                                       EndpointType="READER")
    assert _error(info) == ("DBClusterEndpointAlreadyExistsFault", f"DBClusterEndpoint {name} already exists.", 400)
    _available(rds, name)
    with pytest.raises(ClientError) as info:
        rds.modify_db_cluster_endpoint(DBClusterEndpointIdentifier=name, StaticMembers=["cep-no-such-instance"])
    assert _error(info)[0] == "DBInstanceNotFound"
    _delete(rds, name)


def test_quota_of_five_per_cluster(rds: Any, db: Db) -> None:
    names = [ident(f"cep-q{i}") for i in range(5)]
    for name in names:
        rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=name,
                                       EndpointType="READER")
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=ident("cep-q"),
                                       EndpointType="READER")
    assert _error(info) == ("DBClusterEndpointQuotaExceededFault",
                            f"Cannot create more than 5 custom endpoints for DB cluster {db.cluster_id}.", 403)
    for name in names:
        _available(rds, name)

    def ids(**params: Any) -> list[str | None]:
        found = rds.describe_db_cluster_endpoints(DBClusterIdentifier=db.cluster_id, **params)["DBClusterEndpoints"]
        return [e.get("DBClusterEndpointIdentifier", e["EndpointType"]) for e in found]

    assert ids() == ["WRITER", "READER", *sorted(names)]
    assert ids(Filters=[{"Name": "db-cluster-endpoint-type", "Values": ["writer", "reader"]}]) == ["WRITER", "READER"]
    assert ids(Filters=[{"Name": "db-cluster-endpoint-type", "Values": ["custom"]}]) == sorted(names)
    assert ids(Filters=[{"Name": "db-cluster-endpoint-id", "Values": [names[3]]}]) == [names[3]]
    assert ids(Filters=[{"Name": "db-cluster-endpoint-custom-type", "Values": ["any"]}]) == []
    assert ids(Filters=[{"Name": "db-cluster-endpoint-status", "Values": ["available"]},
                        {"Name": "db-cluster-endpoint-custom-type", "Values": ["reader"]}]) == sorted(names)
    # the account's whole listing, paged by boto3's paginator (Marker), names each once
    pages = rds.get_paginator("describe_db_cluster_endpoints").paginate(PaginationConfig={"PageSize": 20})
    everything = [e.get("DBClusterEndpointIdentifier") for page in pages for e in page["DBClusterEndpoints"]]
    assert all(everything.count(n) == 1 for n in names)
    _delete(rds, *names)


def test_a_deleted_instance_leaves_the_lists(rds: Any, db: Db) -> None:
    extra = ident("cep-gone")
    rds.create_db_instance(DBInstanceIdentifier=extra, DBClusterIdentifier=db.cluster_id, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=extra, WaiterConfig=FAST)
    static, excluded = ident("cep-st"), ident("cep-ex")
    rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=static,
                                   EndpointType="ANY", StaticMembers=[extra, db.instance_id])
    rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=excluded,
                                   EndpointType="READER", ExcludedMembers=[extra])
    _available(rds, static)
    _available(rds, excluded)
    rds.delete_db_instance(DBInstanceIdentifier=extra, SkipFinalSnapshot=True)
    wait_instance_gone(rds, extra)
    assert _available(rds, static)["StaticMembers"] == [db.instance_id]
    assert _available(rds, excluded)["ExcludedMembers"] == []
    _delete(rds, static, excluded)


def test_deleting_the_cluster_deletes_its_endpoints(rds: Any) -> None:
    other = create_db(rds, prefix="cep-del")
    name = ident("cep-del-e")
    rds.create_db_cluster_endpoint(DBClusterIdentifier=other.cluster_id, DBClusterEndpointIdentifier=name,
                                   EndpointType="ANY")
    _available(rds, name)
    rds.delete_db_instance(DBInstanceIdentifier=other.instance_id, SkipFinalSnapshot=True)
    wait_instance_gone(rds, other.instance_id)
    rds.delete_db_cluster(DBClusterIdentifier=other.cluster_id, SkipFinalSnapshot=True)
    wait_cluster_gone(rds, other.cluster_id)
    assert rds.describe_db_cluster_endpoints(DBClusterEndpointIdentifier=name)["DBClusterEndpoints"] == []
    delete_db(rds, other)


def test_the_aws_cli(server: Server, rds: Any, db: Db) -> None:
    name = ident("cep-cli")
    out = server.cli_json("rds", "create-db-cluster-endpoint", "--db-cluster-identifier", db.cluster_id,
                          "--db-cluster-endpoint-identifier", name, "--endpoint-type", "reader",
                          "--static-members", f"{db.cluster_id}-r1", f"{db.cluster_id}-r2")
    assert out["DBClusterEndpointIdentifier"] == name and out["CustomEndpointType"] == "READER"
    assert out["StaticMembers"] == [f"{db.cluster_id}-r1", f"{db.cluster_id}-r2"] and out["Status"] == "creating"
    _available(rds, name)
    _delete(rds, name)


def test_a_deny_on_the_cluster_endpoint_arn(server: Server, rds: Any, db: Db, make_user: Any) -> None:
    denied, free = ident("cep-denied"), ident("cep-free")
    for name in (denied, free):
        rds.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=name,
                                       EndpointType="ANY")
        _available(rds, name)
    arn = f"arn:aws:rds:{REGION}:{server.account}:cluster-endpoint:{denied}"
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:*", "Resource": arn},
    ]})
    client = server.client("rds", user.access_key, user.secret_key)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("modify_db_cluster_endpoint", {"DBClusterEndpointIdentifier": denied.upper(), "StaticMembers": [db.instance_id]}),
        ("delete_db_cluster_endpoint", {"DBClusterEndpointIdentifier": denied}),
        ("describe_db_cluster_endpoints", {"DBClusterEndpointIdentifier": denied.upper()}),
        ("add_tags_to_resource", {"ResourceName": arn[: arn.rindex(":") + 1] + denied.upper(),
                                  "Tags": [{"Key": "owner", "Value": "attacker"}]}),
        ("list_tags_for_resource", {"ResourceName": arn}),
    ]
    for method, params in attempts:
        with pytest.raises(ClientError) as info:
            getattr(client, method)(**params)
        assert _error(info)[0] == "AccessDenied", method
    assert _available(rds, denied)["StaticMembers"] == []
    # the same user may use the other endpoint, and list the cluster's
    client.modify_db_cluster_endpoint(DBClusterEndpointIdentifier=free, StaticMembers=[db.instance_id])
    assert _available(rds, free)["StaticMembers"] == [db.instance_id]
    assert client.describe_db_cluster_endpoints(DBClusterIdentifier=db.cluster_id)["DBClusterEndpoints"]

    # CreateDBClusterEndpoint needs the new endpoint's ARN and the cluster's
    cluster_arn = f"arn:aws:rds:{REGION}:{server.account}:cluster:{db.cluster_id}"
    no_cluster = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:CreateDBClusterEndpoint", "Resource": cluster_arn},
    ]})
    client = server.client("rds", no_cluster.access_key, no_cluster.secret_key)
    with pytest.raises(ClientError) as info:
        client.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id.upper(),
                                          DBClusterEndpointIdentifier=ident("cep-new"), EndpointType="ANY")
    assert _error(info)[0] == "AccessDenied"
    tagless = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:AddTagsToResource", "Resource": "*"},
    ]})
    client = server.client("rds", tagless.access_key, tagless.secret_key)
    with pytest.raises(ClientError) as info:  # tags on create need rds:AddTagsToResource too
        client.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=ident("cep-t"),
                                          EndpointType="ANY", Tags=[{"Key": "k", "Value": "v"}])
    assert _error(info)[0] == "AccessDenied"
    readers_only = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:CreateDBClusterEndpoint", "Resource": "*",
         "Condition": {"StringNotEqualsIgnoreCase": {"rds:EndpointType": "READER"}}},
    ]})
    client = server.client("rds", readers_only.access_key, readers_only.secret_key)
    with pytest.raises(ClientError) as info:  # the rds:EndpointType condition key
        client.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=ident("cep-a"),
                                          EndpointType="ANY")
    assert _error(info)[0] == "AccessDenied"
    allowed = ident("cep-r")
    client.create_db_cluster_endpoint(DBClusterIdentifier=db.cluster_id, DBClusterEndpointIdentifier=allowed,
                                      EndpointType="reader")
    _available(rds, allowed)
    _delete(rds, denied, free, allowed)
