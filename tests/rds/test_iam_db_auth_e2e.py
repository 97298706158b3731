"""IAM database authentication end to end: tokens from unmodified botocore and the AWS CLI, psycopg and
psql logging in through the endpoint, every refusal as ``PAM authentication failed`` with an audit event
that says why, AssumeRole credentials, the master user in rds_iam, and turning IAM authentication off."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import UserKeys

from .e2e_helpers import (
    MASTER,
    Db,
    cluster_dir,
    create_db,
    delete_db,
    ident,
    postmaster_pid,
    psql,
    until,
    wait_instance_gone,
)

REGION = "us-east-1"
PAM = 'PAM authentication failed for user "{}"'


@dataclass
class Env:
    server: Any
    rds: Any
    iam: Any
    db: Db
    cluster_arn: str
    allowed: UserKeys

    def dbuser_arn(self, user: str) -> str:
        return f"arn:aws:rds-db:{REGION}:{self.server.account}:dbuser:{self.db.resource_id}/{user}"

    def token(self, keys: UserKeys | None = None, *, user: str = "iamuser", port: int | None = None,
              session_token: str | None = None, host: str | None = None) -> str:
        keys = keys or self.allowed
        client = self.server.client("rds", keys.access_key, keys.secret_key, session_token=session_token)
        return str(client.generate_db_auth_token(DBHostname=host or self.db.host, Port=port or self.db.port,
                                                 DBUsername=user, Region=REGION))

    def login(self, password: str, user: str = "iamuser", sslmode: str = "require") -> str:
        with self.db.connect(user, password, sslmode=sslmode) as conn:
            row = conn.execute("SELECT current_user").fetchone()
            assert row is not None
            return str(row[0])

    def refused(self, password: str, user: str = "iamuser", sslmode: str = "require",
                message: str | None = None) -> None:
        with pytest.raises(psycopg.OperationalError) as info:
            self.login(password, user, sslmode)
        assert (message or PAM.format(user)) in str(info.value)

    def audit_events(self) -> list[dict[str, Any]]:
        trail = self.server.client("cloudtrail")
        found = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventSource",
                                                       "AttributeValue": "rds-db.amazonaws.com"}],
                                    MaxResults=50)["Events"]
        return [json.loads(e["CloudTrailEvent"]) for e in found]

    def last_audit(self, user: str = "iamuser") -> dict[str, Any]:
        for event in self.audit_events():  # newest first
            if event["requestParameters"]["dbUser"] == user:
                return event
        raise AssertionError("no audit event")


def _policy(resource: str) -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": resource}]}


@pytest.fixture(scope="module")
def env(server: Any) -> Iterator[Env]:
    rds, iam = server.client("rds"), server.client("iam")
    group = ident("iam-pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="plaintext allowed")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    db = create_db(rds, prefix="e2e-iamdb", EnableIAMDatabaseAuthentication=True,
                   DBClusterParameterGroupName=group)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    assert cluster["IAMDatabaseAuthenticationEnabled"] is True
    with db.connect() as conn:
        conn.execute("CREATE ROLE iamuser LOGIN")
        conn.execute("GRANT rds_iam TO iamuser")
        conn.execute("GRANT CONNECT ON DATABASE appdb TO iamuser")
    e = Env(server, rds, iam, db, cluster["DBClusterArn"], None)  # type: ignore[arg-type]
    e.allowed = _make_user(server, _policy(e.dbuser_arn("iamuser")))
    try:
        yield e
    finally:
        delete_db(rds, db)


def _make_user(server: Any, *policies: dict[str, Any]) -> UserKeys:
    iam = server.client("iam")
    name = ident("dbuser")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for i, doc in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return UserKeys(name, arn, key["AccessKeyId"], key["SecretAccessKey"])


def test_botocore_token_logs_in(env: Env) -> None:
    token = env.token()
    assert token.startswith(f"{env.db.host}:{env.db.port}/?Action=connect&DBUser=iamuser")
    assert env.login(token) == "iamuser"
    event = env.last_audit()
    assert event["eventName"] == "connect" and "errorCode" not in event
    assert event["userIdentity"]["arn"] == env.allowed.arn
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["requestParameters"]["dbClusterIdentifier"] == env.db.cluster_id
    # a token is good for 15 minutes, for as many logins as wanted
    assert env.login(token) == "iamuser"


def test_cli_token_with_psql(env: Env) -> None:
    aws_env = {**os.environ, "AWS_ACCESS_KEY_ID": env.allowed.access_key,
               "AWS_SECRET_ACCESS_KEY": env.allowed.secret_key, "AWS_DEFAULT_REGION": REGION}
    aws_env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(["aws", "rds", "generate-db-auth-token", "--hostname", env.db.host, "--port",
                          str(env.db.port), "--username", "iamuser", "--region", REGION],
                         capture_output=True, text=True, env=aws_env, timeout=60, check=True)
    token = out.stdout.strip()
    psql = subprocess.run(["psql", f"host={env.db.host} port={env.db.port} user=iamuser dbname=appdb "
                           "sslmode=require", "-XAtc", "SELECT current_user"],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": token})
    assert psql.stdout.strip() == "iamuser", psql.stderr


def _expired_token(env: Env) -> str:
    creds = Credentials(env.allowed.access_key, env.allowed.secret_key)
    request = AWSRequest(method="GET", url=f"https://{env.db.host}:{env.db.port}/?Action=connect&DBUser=iamuser")
    SigV4QueryAuth(creds, "rds-db", REGION, expires=1).add_auth(request)
    time.sleep(2)
    return str(request.url)[len("https://"):]


def test_bad_tokens_are_refused_with_a_reason(env: Env) -> None:
    good = env.token()
    signature_at = good.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    tampered = good[:signature_at] + ("0" if good[signature_at] != "0" else "1") + good[signature_at + 1:]
    no_policy = _make_user(env.server)
    other_dbuser = _make_user(env.server, _policy(env.dbuser_arn("someoneelse")))
    inactive = _make_user(env.server, _policy(env.dbuser_arn("iamuser")))
    inactive_token = env.token(inactive)
    env.iam.update_access_key(UserName=inactive.name, AccessKeyId=inactive.access_key, Status="Inactive")
    cases = [
        (env.token(user="someoneelse"), "for database user 'someoneelse'"),
        (env.token(port=env.db.port + 1), "not for this endpoint"),
        (tampered, "SignatureDoesNotMatch"),
        (_expired_token(env), "Request has expired"),
        (env.token(no_policy), "no identity-based policy allows the rds-db:connect action"),
        (env.token(other_dbuser), "no identity-based policy allows the rds-db:connect action"),
        (inactive_token, "InvalidClientTokenId"),
        ("not-a-token", "not an IAM authentication token"),
        (good.replace(f":{env.db.port}/", f":{env.db.port + 1}/"), "not for this endpoint"),
        ("x" * 9000, "not an IAM authentication token"),
    ]
    for token, why in cases:
        env.refused(token)
        event = env.last_audit()
        assert event["errorCode"] == "AccessDenied", (why, event)
        assert why in event["errorMessage"], (why, event["errorMessage"])
    # plaintext: refused before the token is even looked at (force_ssl is 0 on this cluster)
    env.refused(good, sslmode="disable")
    assert "requires an SSL connection" in env.last_audit()["errorMessage"]
    # and the good token still works
    assert env.login(good) == "iamuser"


def test_assume_role_credentials(env: Env) -> None:
    iam, sts = env.iam, None
    caller = _make_user(env.server, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    role = ident("dbrole")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller.arn},
                                                      "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="db", PolicyDocument=json.dumps(_policy(env.dbuser_arn("iamuser"))))
    sts = env.server.client("sts", caller.access_key, caller.secret_key)
    creds = None
    for _ in range(50):  # IAM is eventually consistent in AWS; here only the trust check could lag
        try:
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{env.server.account}:role/{role}",
                                    RoleSessionName="db")["Credentials"]
            break
        except Exception:
            time.sleep(0.1)
    assert creds is not None
    keys = UserKeys(role, "", creds["AccessKeyId"], creds["SecretAccessKey"])
    token = env.token(keys, session_token=creds["SessionToken"])
    assert "X-Amz-Security-Token=" in token
    assert env.login(token) == "iamuser"
    assert env.last_audit()["userIdentity"]["type"] == "AssumedRole"
    # the caller's own credentials carry no rds-db:connect
    env.refused(env.token(caller))


def test_password_users_and_the_master(env: Env) -> None:
    db = env.db
    with db.connect() as conn:
        conn.execute("CREATE ROLE pwuser LOGIN PASSWORD 'Pw-user-pass-1'")
        conn.execute("GRANT CONNECT ON DATABASE appdb TO pwuser")
    assert env.login("Pw-user-pass-1", user="pwuser") == "pwuser"
    env.refused("wrong", user="pwuser", message='password authentication failed for user "pwuser"')
    # iamuser has logged in by token: its creator (the master, a member of iamuser in PostgreSQL 16+)
    # still logs in with its password only
    assert env.login(env.token()) == "iamuser"
    assert env.login(db.password, user=MASTER) == MASTER
    env.refused("wrong", user=MASTER, message=f'password authentication failed for user "{MASTER}"')
    # a token is no password for a user outside rds_iam
    env.refused(env.token(user="pwuser"), user="pwuser", message='password authentication failed for user "pwuser"')

    # the master in rds_iam: IAM takes precedence over the password
    master_policy = _make_user(env.server, _policy(env.dbuser_arn(MASTER)))
    with db.connect() as conn:
        conn.execute(f"GRANT rds_iam TO {MASTER}")
    env.refused(db.password, user=MASTER)
    # a password sent where a token is expected is quoted nowhere: not in the audit trail, not in the log
    event = env.last_audit(MASTER)
    assert "not an IAM authentication token" in event["errorMessage"], event
    assert db.password not in json.dumps(event)
    assert env.server.log_path is not None and db.password not in env.server.log_path.read_text(errors="replace")
    with db.connect(MASTER, env.token(master_policy, user=MASTER)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MASTER,)
        conn.execute(f"REVOKE rds_iam FROM {MASTER}")
    # out of rds_iam again: the password works at once, the token no longer does
    assert env.login(db.password, user=MASTER) == MASTER
    env.refused(env.token(master_policy, user=MASTER), user=MASTER,
                message=f'password authentication failed for user "{MASTER}"')
    # user names are case-sensitive: "IAMUSER" is another (unknown) role
    env.refused(env.token(user="IAMUSER"), user="IAMUSER", message='password authentication failed for user "IAMUSER"')


def test_replication_connections_cannot_use_iam(env: Env) -> None:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(host=env.db.host, port=env.db.port, user="iamuser", password=env.token(),
                        dbname="appdb", sslmode="require", replication="database", connect_timeout=10)
    assert PAM.format("iamuser") in str(info.value)
    assert "replication" in env.last_audit()["errorMessage"]


def _any_dbuser(env: Env) -> UserKeys:
    """An IAM user allowed to connect as any database user of the cluster."""
    return _make_user(env.server, _policy(env.dbuser_arn("*")))


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _too_long(what: str, name: str) -> str:
    return f'{what} name "{name}" is too long (PostgreSQL allows at most 63 bytes)'


def test_names_postgresql_would_truncate_are_refused(env: Env) -> None:
    """PostgreSQL cuts a startup packet's names to 63 bytes; a token authorizes the name as given, so a
    token for a 64-character name would log in as the 63-byte role. Refused before any authorization."""
    iam_role = "t" + secrets.token_hex(31)  # 63 bytes, in rds_iam
    pw_role = "p" + secrets.token_hex(31)  # 63 bytes, a password user
    with env.db.connect() as conn:
        conn.execute(f"CREATE ROLE {iam_role} LOGIN")
        conn.execute(f"GRANT rds_iam TO {iam_role}")
        conn.execute(f"CREATE ROLE {pw_role} LOGIN PASSWORD 'Pw-long-pass-1'")
    long_iam, long_pw = iam_role + "x", pw_role + "x"
    # the 63-byte role is an IAM user that has logged in (so the server trusts the gateway for it)
    owner = _make_user(env.server, _policy(env.dbuser_arn(iam_role)))
    assert env.login(env.token(owner, user=iam_role), user=iam_role) == iam_role
    # allowed for the 64-character name only: the 63-byte role's own name is not in the policy
    signer = _make_user(env.server, _policy(env.dbuser_arn(long_iam)))
    env.refused(env.token(signer, user=iam_role), user=iam_role)
    env.refused(env.token(signer, user=long_iam), user=long_iam, message=_too_long("role", long_iam))
    assert all(e["requestParameters"]["dbUser"] != long_iam for e in env.audit_events())  # never authorized
    env.refused("Pw-long-pass-1", user=long_pw, message=_too_long("role", long_pw))
    # bytes, not characters (UTF-8): 32 two-byte characters are 64 bytes
    env.refused("x", user="é" * 32, message=_too_long("role", "é" * 32))
    with pytest.raises(psycopg.OperationalError) as info:
        env.db.connect(dbname="appdb" + "d" * 59)
    assert _too_long("database", "appdb" + "d" * 59) in str(info.value)
    # 63 bytes are fine
    assert env.login("Pw-long-pass-1", user=pw_role) == pw_role


def test_reserved_roles_are_refused_at_once(env: Env) -> None:
    """rdsadmin is a superuser (a member of every role, rds_iam too); a token for it used to be taken as
    an IAM login that waited ~5 s for a pg_hba.conf reload holding the cluster's lock."""
    signer = _any_dbuser(env)
    for user in ("rdsadmin", "rds_iam", "rds_superuser", "rds_password", "rds_replication"):
        for password in (env.token(signer, user=user), "not-the-password"):
            started = time.monotonic()
            env.refused(password, user=user, message=f'pg_hba.conf rejects connection for host "127.0.0.1", '
                                                     f'user "{user}", database "appdb", SSL encryption')
            assert time.monotonic() - started < 1.0, user
    # a refusal does not hold up a legitimate IAM login to the same cluster
    bad, good = env.token(signer, user="rdsadmin"), env.token()

    def timed(fn: Callable[[], Any]) -> float:
        started = time.monotonic()
        fn()
        return time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        refused = pool.submit(timed, lambda: env.refused(bad, user="rdsadmin", message="pg_hba.conf rejects"))
        time.sleep(0.2)
        login = pool.submit(timed, lambda: env.login(good))
        assert refused.result() < 1.0
        assert login.result() < 1.0


# Role names that are pg_hba.conf syntax: keywords, +group, /regex, @file, comma and comment, quotes,
# spaces, a trailing backslash (line continuation in PostgreSQL 16+)
_HBA_SYNTAX = ["all", "samerole", "samegroup", "sameuser", "replication", "+hbagroup", "@pg_ident.conf",
               'a"b', '""', "a,all", "has space all", "#all", "x\\", "x\tall", "a/b"]
# What cannot be one literal token: line breaks, and a leading "/" (PostgreSQL 16+ reads a token starting
# with "/" as a regular expression even when quoted; an invalid one makes pg_hba.conf fail to load)
_NOT_TOKENS = ["x\nall\ny", "z\r\nall", "w\rall", "/^hbavictim", "/("]


def test_role_names_never_become_pg_hba_syntax(env: Env) -> None:
    """A role name reaches the peer-trust list only as one quoted token: a role "x<newline>all<newline>y" in
    rds_iam used to add a bare ``all`` line at its first IAM login, and every password login was then
    refused (a user trusted by peer that the gateway did not verify)."""
    victim = ident("hbavictim").replace("-", "_")
    with env.db.connect() as conn:
        conn.execute("CREATE ROLE hbagroup NOLOGIN")
        conn.execute(f"CREATE ROLE {victim} LOGIN PASSWORD 'Victim-pass-1' IN ROLE hbagroup")
    names = _HBA_SYNTAX + _NOT_TOKENS
    script = "".join(f"CREATE ROLE {_sql_ident(n)} LOGIN; GRANT rds_iam TO {_sql_ident(n)};\n" for n in names)
    psql(env.db, script + "GRANT CONNECT ON DATABASE appdb TO PUBLIC;")  # as the master, with psql
    signer = _any_dbuser(env)
    for name in _HBA_SYNTAX:
        try:
            assert env.login(env.token(signer, user=name), user=name) == name, name
        except psycopg.OperationalError:
            raise AssertionError(env.last_audit(name)) from None
        env.refused(env.token(signer, user="someoneelse"), user=name)  # still an IAM user, exactly
    outcomes = {}
    for name in _NOT_TOKENS:
        try:
            outcomes[name] = env.login(env.token(signer, user=name), user=name)
        except psycopg.OperationalError as exc:
            outcomes[name] = str(exc)
    # nobody else is trusted by peer: a wrong password is a wrong password (a user the server trusted
    # would have been refused by the gateway as "PAM authentication failed"), the right one logs in
    for user, password in ((victim, "Victim-pass-1"), (MASTER, env.db.password)):
        env.refused("wrong", user=user, message=f'password authentication failed for user "{user}"')
        assert env.login(password, user=user) == user
    for other in ("x", "y", "z", "w", "hbagroup", "b", "a"):
        env.refused("wrong", user=other, message=f'password authentication failed for user "{other}"')
    # the IAM users are still the exact names
    assert env.login(env.token(), user="iamuser") == "iamuser"
    # the names that cannot be one literal token are refused
    for name in _NOT_TOKENS:
        assert PAM.format(name) in outcomes[name], (name, outcomes[name])
        assert "cannot be used with IAM authentication" in env.last_audit(name)["errorMessage"]


def test_a_list_poisoned_by_an_older_auroral_is_cleaned_at_restart(env: Env) -> None:
    """A peer-trust list an older auroral wrote for such role names (a bare ``all`` line, an invalid
    regular expression that would keep the server from starting) is rewritten before the next start."""
    victim = ident("oldvictim").replace("-", "_")
    with env.db.connect() as conn:
        conn.execute(f"CREATE ROLE {victim} LOGIN PASSWORD 'Victim-pass-2'")
    assert env.login(env.token()) == "iamuser"  # listed
    path = cluster_dir(env.server.data_dir, env.db.resource_id) / "pgdata" / "auroral.iam_users"
    with path.open("a", encoding="utf-8") as handle:  # in place: owner and mode stay the engine's
        handle.write('"x\nall\ny"\n"/("\n')
    old_pid = postmaster_pid(env.server.data_dir, env.db.resource_id)
    env.rds.reboot_db_instance(DBInstanceIdentifier=env.db.instance_id)
    until(lambda: env.rds.describe_db_instances(DBInstanceIdentifier=env.db.instance_id)["DBInstances"][0][
        "DBInstanceStatus"] == "available" and postmaster_pid(env.server.data_dir, env.db.resource_id) != old_pid,
        timeout=60, what="rebooted")
    until(lambda: env.login("Victim-pass-2", user=victim) == victim, what="password login after reboot")
    env.refused("wrong", user=victim, message=f'password authentication failed for user "{victim}"')
    assert env.login(env.token()) == "iamuser"
    lines = path.read_text(encoding="utf-8").split("\n")
    assert "all" not in lines and '"/("' not in lines and '"iamuser"' in lines


def test_disabling_iam_authentication(env: Env) -> None:
    """Last in this module: turns IAM authentication off on the shared cluster."""
    token = env.token()
    assert env.login(token) == "iamuser"
    env.rds.modify_db_cluster(DBClusterIdentifier=env.db.cluster_id, EnableIAMDatabaseAuthentication=False,
                              ApplyImmediately=True)
    # iamuser has no password: the token is just a wrong password now
    env.refused(token, message='password authentication failed for user "iamuser"')
    assert env.login(env.db.password, user=MASTER) == MASTER
    with env.db.connect() as conn:
        conn.execute("ALTER ROLE iamuser PASSWORD 'Iam-user-pass-1'")
    assert env.login("Iam-user-pass-1") == "iamuser"
    env.rds.modify_db_cluster(DBClusterIdentifier=env.db.cluster_id, EnableIAMDatabaseAuthentication=True,
                              ApplyImmediately=True)
    env.refused("Iam-user-pass-1")
    assert env.login(env.token()) == "iamuser"


def test_attack_tokens_for_another_region_partition_cluster_or_case(env: Env) -> None:
    """Adversarial review, second pass: a token is good for one region's cluster, one resource id and one
    exact user name. The signer below may connect as iamuser anywhere, in every partition."""
    acct, rid = env.server.account, env.db.resource_id
    everywhere = _make_user(env.server, {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "rds-db:connect",
        "Resource": ["arn:aws:rds-db:*:*:dbuser:*/iamuser", "arn:aws-cn:rds-db:*:*:dbuser:*/iamuser"]}]})
    for region in ("us-west-2", "cn-north-1"):
        client = env.server.client("rds", everywhere.access_key, everywhere.secret_key, region_name=region)
        token = client.generate_db_auth_token(DBHostname=env.db.host, Port=env.db.port, DBUsername="iamuser",
                                              Region=region)
        env.refused(token)
        assert f"signed for region '{region}'" in env.last_audit()["errorMessage"]
    # allowed only on the same resource id in another region / partition, or for another cluster or case
    for resource in (f"arn:aws:rds-db:us-west-2:{acct}:dbuser:{rid}/iamuser",
                     f"arn:aws-cn:rds-db:{REGION}:{acct}:dbuser:{rid}/iamuser",
                     f"arn:aws:rds-db:{REGION}:{acct}:dbuser:{rid.upper()}/iamuser",
                     f"arn:aws:rds-db:{REGION}:{acct}:dbuser:cluster-OTHER/iamuser",
                     f"arn:aws:rds-db:{REGION}:{acct}:dbuser:{rid}/IAMUSER"):
        env.refused(env.token(_make_user(env.server, _policy(resource))))
        assert "rds-db:connect" in env.last_audit()["errorMessage"], resource
    # a token for IAMUSER does not log in iamuser, nor the other way round
    env.refused(env.token(everywhere, user="IAMUSER"))
    assert env.login(env.token(everywhere)) == "iamuser"


def test_iam_login_through_a_reader(env: Env) -> None:
    """Each reader runs a server of its own: the peer list reaches it too."""
    from .test_replicas_e2e import add_reader, instance_address

    reader, _ = add_reader(env.rds, env.db)
    try:
        host, port = instance_address(env.rds, reader)
        token = env.token(host=host, port=port)
        with psycopg.connect(host=host, port=port, user="iamuser", password=token, dbname=env.db.database,
                             sslmode="require", connect_timeout=10) as conn:
            assert conn.execute("SELECT current_user, pg_is_in_recovery()").fetchone() == ("iamuser", True)
    finally:
        env.rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        wait_instance_gone(env.rds, reader)
