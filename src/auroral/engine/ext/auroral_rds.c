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
 * Everything else (ALTER ROLE ... SET, other attributes, GRANT) is left to PostgreSQL's own checks.
 * Compiles against PostgreSQL 14 and newer (the ProcessUtility_hook signature of 14+).
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "libpq/crypt.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool restrict_password_commands = false;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

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

static void
auroral_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (restrict_password_commands && is_password_command(pstmt->utilityStmt))
		check_rds_password();
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
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
}
