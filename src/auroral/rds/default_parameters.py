"""Engine-default cluster parameters of the ``aurora-postgresql<major>`` families (data).

A subset of what AWS's ``DescribeEngineDefaultClusterParameters`` lists: the parameters that
matter for Aurora's security model and the common ones clients set. Each entry gives the
fields AWS reports (``ApplyType``, ``DataType``, ``AllowedValues``, ``IsModifiable``,
``Description``); ``value`` is the default (``None``: AWS reports no value) and may depend on
the major version through ``value_by_major``. Values in braces are AWS formulas (evaluated
against the instance class by AWS); they are shown, never passed to a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParameterDefault:
    name: str
    value: str | None
    apply_type: str  # "static" | "dynamic"
    data_type: str  # "boolean" | "integer" | "string" | "list"
    allowed: str | None
    description: str
    modifiable: bool = True
    source: str = "engine-default"
    # (first major, value) pairs, highest first: the value for majors >= first major.
    value_by_major: tuple[tuple[int, str], ...] = ()

    def default_for(self, major: int) -> str | None:
        for first, value in self.value_by_major:
            if major >= first:
                return value
        return self.value


DEFAULTS: tuple[ParameterDefault, ...] = (
    ParameterDefault(
        "client_encoding", "UTF8", "dynamic", "string",
        "BIG5,EUC_CN,EUC_JP,EUC_JIS_2004,EUC_KR,EUC_TW,GB18030,GBK,ISO_8859_5,ISO_8859_6,ISO_8859_7,"
        "ISO_8859_8,JOHAB,KOI8R,KOI8U,LATIN1,LATIN2,LATIN3,LATIN4,LATIN5,LATIN6,LATIN7,LATIN8,LATIN9,"
        "LATIN10,MULE_INTERNAL,SJIS,SHIFT_JIS_2004,SQL_ASCII,UHC,UTF8,WIN866,WIN874,WIN1250,WIN1251,"
        "WIN1252,WIN1253,WIN1254,WIN1255,WIN1256,WIN1257,WIN1258",
        "Sets the clients character set encoding.",
    ),
    ParameterDefault(
        "idle_in_transaction_session_timeout", None, "dynamic", "integer", "0-2147483647",
        "Sets the maximum allowed duration of any idling transaction.",
    ),
    ParameterDefault(
        "log_connections", "0", "dynamic", "boolean", "0,1", "Logs each successful connection.",
    ),
    ParameterDefault(
        "log_disconnections", "0", "dynamic", "boolean", "0,1",
        "Logs end of a session, including duration.",
    ),
    # stderr (postgresql.log.<time>) and/or csvlog (postgresql.log.<time>.csv), as Aurora offers them
    ParameterDefault(
        "log_destination", "stderr", "dynamic", "list", "stderr,csvlog",
        "Sets the destination for server log output.", source="system",
    ),
    # Aurora's prefix (the user guide's "Parameters for logging in Aurora PostgreSQL", which also says it
    # cannot be changed); %r shows the client as auroral's endpoint saw it (auroral_rds makes it the
    # connection's remote address).
    ParameterDefault(
        "log_line_prefix", "%t:%r:%u@%d:[%p]:", "dynamic", "string", None,
        "Controls information prefixed to each log line.", modifiable=False, source="system",
    ),
    ParameterDefault(
        "log_min_duration_statement", None, "dynamic", "integer", "-1-2147483647",
        "(ms) Sets the minimum execution time above which statements will be logged.",
    ),
    ParameterDefault(
        "log_min_messages", None, "dynamic", "string",
        "debug5,debug4,debug3,debug2,debug1,info,notice,warning,error,log,fatal,panic",
        "Sets the message levels that are logged.",
    ),
    # Aurora: rotated hourly by default, 1-1440 minutes; by size (kB) 50,000-1,000,000 when set
    # (unconfirmed: Aurora's value when unset; PostgreSQL's own default, 10 MB, applies here).
    ParameterDefault(
        "log_rotation_age", "60", "dynamic", "integer", "1-1440",
        "(min) Automatic log file rotation will occur after N minutes.", source="system",
    ),
    ParameterDefault(
        "log_rotation_size", None, "dynamic", "integer", "50000-1000000",
        "(kB) Automatic log file rotation will occur after N kilobytes.",
    ),
    ParameterDefault(
        "log_statement", None, "dynamic", "string", "none,ddl,mod,all",
        "Sets the type of statements logged.",
    ),
    ParameterDefault(
        "max_connections", "LEAST({DBInstanceClassMemory/9531392},5000)", "static", "integer",
        "6-262143", "Sets the maximum number of concurrent connections.", source="system",
    ),
    ParameterDefault(
        "password_encryption", "scram-sha-256", "dynamic", "string", "md5,scram-sha-256",
        "Encrypt passwords.",
    ),
    ParameterDefault(
        "rds.accepted_password_auth_method", "md5+scram", "dynamic", "string", "md5+scram,scram",
        "Force authentication for connections with password stored locally.", source="system",
    ),
    # AWS turned SSL enforcement on by default with PostgreSQL 15 (the 15+ parameter groups
    # ship rds.force_ssl=1); older families default to 0. AWS-BEHAVIOUR.md: choose 1 for 15+.
    # '*': every extension of rds.extensions; a comma list narrows (auroral_rds refuses the others).
    # Dynamic in AWS. AllowedValues: auroral's list for the family (local_runtime.allowed_values).
    ParameterDefault(
        "rds.allowed_extensions", "*", "dynamic", "list", None,
        "list of extensions that are allowed to be installed", source="system",
    ),
    ParameterDefault(
        "rds.force_ssl", "0", "dynamic", "boolean", "0,1", "Force SSL connections.",
        source="system", value_by_major=((15, "1"),),
    ),
    # Minutes a PostgreSQL log file is kept after it was last written (auroral expires them: logfiles.py).
    ParameterDefault(
        "rds.log_retention_period", "4320", "dynamic", "integer", "1440-10080",
        "Amazon RDS will delete PostgreSQL log that are older than N minutes.", source="system",
    ),
    ParameterDefault(
        "rds.logical_replication", "0", "static", "boolean", "0,1",
        "Enables logical decoding.", source="system",
    ),
    # Static in AWS: changing it needs a reboot of the writer.
    ParameterDefault(
        "rds.restrict_password_commands", "0", "static", "boolean", "0,1",
        "restricts password-related commands to members of rds_password", source="system",
    ),
    ParameterDefault(
        "shared_preload_libraries", "pg_stat_statements", "static", "list",
        "auto_explain,orafce,pg_bigm,pg_cron,pg_hint_plan,pg_partman_bgw,pg_similarity,"
        "pg_stat_statements,pg_tle,pgaudit,pglogical,plprofiler",
        "Lists shared libraries to preload into server.", source="system",
    ),
    # TLS is terminated by the gateway and always offered, as on Aurora, where ssl cannot be turned off.
    ParameterDefault(
        "ssl", "1", "dynamic", "boolean", "0,1", "Enables SSL.", modifiable=False, source="system",
    ),
    ParameterDefault(
        "ssl_min_protocol_version", "TLSv1.2", "dynamic", "string", "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3",
        "Sets the minimum SSL/TLS protocol version to use.", source="system",
    ),
    ParameterDefault(
        "statement_timeout", None, "dynamic", "integer", "0-2147483647",
        "(ms) Sets the maximum allowed duration of any statement.",
    ),
    ParameterDefault(
        "timezone", "UTC", "dynamic", "string", None,
        "Sets the time zone for displaying and interpreting time stamps.", source="system",
    ),
)

BY_NAME: dict[str, ParameterDefault] = {p.name: p for p in DEFAULTS}
