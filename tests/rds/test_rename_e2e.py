"""ModifyDBInstance with NewDBInstanceIdentifier, end to end: what a client sees of a renamed writer and a
renamed reader. The instance name changes (the old one stops resolving, the new one resolves to the same
address), the cluster and reader endpoints lead to the new names, Aurora's functions and DBClusterMembers
report the new identifiers, IAM tokens are good for the new name only, FailoverDBCluster takes the new
name and the certificate verifies for it. A real server; unmodified boto3, psycopg and dnspython
against auroral's DNS server (and the system resolver through its hosts block)."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import psycopg
import pytest

from .e2e_helpers import Db, create_db, delete_db, ident, until, wait_instance_gone
from .test_replicas_e2e import add_reader, endpoint_follows, wait_available


def dns_server(server: Any) -> tuple[str, int]:
    with urllib.request.urlopen(server.url + "/_auroral/health", timeout=5) as resp:
        address = str(json.loads(resp.read())["dns"])
    host, port = address.rsplit(":", 1)
    return host, int(port)


def ask(at: tuple[str, int], name: str) -> tuple[int, list[tuple[str, str]]]:
    """The rcode and the answer's (type, value) records for an A query of ``name``."""
    reply = dns.query.udp(dns.message.make_query(name, "A"), at[0], port=at[1], timeout=3)
    found = [(dns.rdatatype.to_text(rrset.rdtype), rdata.to_text().rstrip("."))
             for rrset in reply.answer for rdata in rrset]
    return reply.rcode(), found


def instance_name(rds: Any, instance: str) -> str:
    return str(rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["Endpoint"]["Address"])


def resolves_to(at: tuple[str, int], name: str, address: str) -> bool:
    rcode, found = ask(at, name)
    return rcode == dns.rcode.NOERROR and ("A", address) in found and socket.gethostbyname(name) == address


def gone(at: tuple[str, int], name: str) -> bool:
    """NXDOMAIN at auroral's DNS server, and the system resolver no longer knows it either."""
    if ask(at, name)[0] != dns.rcode.NXDOMAIN:
        return False
    try:
        socket.gethostbyname(name)
    except socket.gaierror:
        return True
    return False


def login(db: Db, host: str, bundle: str, **kw: Any) -> psycopg.Connection[tuple[Any, ...]]:
    kw.setdefault("user", db.master)
    kw.setdefault("password", db.password)
    return psycopg.connect(host=host, port=db.port, dbname=db.database, sslmode="verify-full", sslrootcert=bundle,
                           connect_timeout=10, autocommit=True, **kw)


def members(rds: Any, cluster_id: str) -> dict[str, bool]:
    found = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["DBClusterMembers"]
    return {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in found}


def rename(rds: Any, old: str, new: str) -> dict[str, Any]:
    answer = rds.modify_db_instance(DBInstanceIdentifier=old, NewDBInstanceIdentifier=new, ApplyImmediately=True)
    until(lambda: rds.describe_db_instances(DBInstanceIdentifier=new)["DBInstances"][0]["DBInstanceStatus"]
          == "available", timeout=60, what=f"{new} available")
    return dict(answer["DBInstance"])


def test_a_renamed_writer_and_reader_are_known_by_their_new_names_everywhere(server: Any) -> None:
    rds = server.client("rds")
    at = dns_server(server)
    bundle = str(server.data_dir / "tls" / "rds-ca-bundle.pem")
    db = create_db(rds, prefix="ren", EnableIAMDatabaseAuthentication=True)
    reader, _ = add_reader(rds, db)
    new_writer, new_reader = ident("ren-w2"), ident("ren-r2")
    try:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        old_writer_name, old_reader_name = instance_name(rds, db.instance_id), instance_name(rds, reader)
        writer_ip, reader_ip = socket.gethostbyname(old_writer_name), socket.gethostbyname(old_reader_name)
        with login(db, old_writer_name, bundle) as conn:
            conn.execute("CREATE USER iamuser")
            conn.execute("GRANT rds_iam TO iamuser")
        held = login(db, old_reader_name, bundle)  # a session on the reader when it is renamed

        answer = rename(rds, db.instance_id, new_writer)
        assert answer["DBInstanceIdentifier"] == new_writer
        rename(rds, reader, new_reader)
        with pytest.raises(rds.exceptions.DBInstanceNotFoundFault):
            rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)

        # (a) the new names resolve to the instances' addresses; the old ones are gone
        writer_name, reader_name = instance_name(rds, new_writer), instance_name(rds, new_reader)
        assert writer_name == old_writer_name.replace(db.instance_id, new_writer, 1)
        until(lambda: resolves_to(at, writer_name, writer_ip), what="the writer's new name resolving")
        until(lambda: resolves_to(at, reader_name, reader_ip), what="the reader's new name resolving")
        until(lambda: gone(at, old_writer_name), what="the writer's old name gone")
        until(lambda: gone(at, old_reader_name), what="the reader's old name gone")
        # (b) the cluster and reader endpoints are CNAMEs to the new names
        assert ask(at, cluster["Endpoint"])[1][0] == ("CNAME", writer_name)
        assert ask(at, cluster["ReaderEndpoint"])[1][0] == ("CNAME", reader_name)
        assert socket.gethostbyname(cluster["Endpoint"]) == writer_ip
        # (d) DBClusterMembers
        assert members(rds, db.cluster_id) == {new_writer: True, new_reader: False}

        # a rename reboots the instance (AWS): the reader's sessions were closed
        try:
            with pytest.raises(psycopg.OperationalError):
                held.execute("SELECT 1")
        finally:
            held.close()

        # (c) Aurora's functions, from every instance; (g) verify-full against the new names
        for name, me in ((writer_name, new_writer), (reader_name, new_reader)):
            with login(db, name, bundle) as conn:
                assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == (me,)
                rows = conn.execute("SELECT server_id, session_id FROM aurora_replica_status()").fetchall()
                assert [r[0] for r in rows] == [new_writer, new_reader]
                assert rows[0][1] == "MASTER_SESSION_ID"

        # (e) IAM tokens: good for the new name, not for the old one
        def iam_login(host: str, signed_for: str) -> None:
            token = rds.generate_db_auth_token(DBHostname=signed_for, Port=db.port, DBUsername="iamuser",
                                               Region="us-east-1")
            with login(db, host, bundle, user="iamuser", password=token) as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("iamuser",)

        iam_login(writer_name, writer_name)
        iam_login(reader_name, reader_name)
        for host, old in ((writer_name, old_writer_name), (reader_name, old_reader_name)):
            with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "iamuser"'):
                iam_login(host, old)

        # (f) a failover to the renamed reader, by its new name
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id, TargetDBInstanceIdentifier=new_reader)
        wait_available(rds, db.cluster_id)
        assert members(rds, db.cluster_id) == {new_writer: False, new_reader: True}
        until(lambda: ask(at, cluster["Endpoint"])[1][0] == ("CNAME", reader_name), what="the endpoint following")
        endpoint_follows(rds, db.cluster_id, new_reader)  # the hosts block is rewritten a moment later
        with login(db, cluster["Endpoint"], bundle) as conn:
            assert conn.execute("SELECT aurora_db_instance_identifier(), pg_is_in_recovery()").fetchone() == (
                new_reader, False)
            rows = conn.execute("SELECT server_id, session_id FROM aurora_replica_status()").fetchall()
            assert rows[0] == (new_reader, "MASTER_SESSION_ID") and [r[0] for r in rows] == [new_reader, new_writer]
    finally:
        for instance in (new_reader, reader):
            try:
                rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
                wait_instance_gone(rds, instance)
            except rds.exceptions.DBInstanceNotFoundFault:
                pass
        db.instance_id = new_writer if new_writer in members(rds, db.cluster_id) else db.instance_id
        delete_db(rds, db)


def test_a_rename_to_a_taken_name_or_of_a_busy_instance_is_refused(server: Any) -> None:
    rds = server.client("rds")
    db = create_db(rds, prefix="ren-x")
    reader, _ = add_reader(rds, db)
    try:
        with pytest.raises(rds.exceptions.DBInstanceAlreadyExistsFault):
            rds.modify_db_instance(DBInstanceIdentifier=reader, NewDBInstanceIdentifier=db.instance_id,
                                   ApplyImmediately=True)
        assert members(rds, db.cluster_id) == {db.instance_id: True, reader: False}
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        wait_instance_gone(rds, reader)
        delete_db(rds, db)
