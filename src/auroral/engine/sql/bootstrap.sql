-- Aurora's database-level model, applied once per template by the bootstrap superuser "rdsadmin"
-- (initdb -U rdsadmin: rdsadmin is the bootstrap role, OID 10, which PostgreSQL never lets anyone drop).
-- Per-cluster statements (rdsadmin password, master user, database) are built in bootstrap.py.

CREATE ROLE rds_superuser NOLOGIN;
CREATE ROLE rds_replication NOLOGIN;
CREATE ROLE rds_password NOLOGIN;
CREATE ROLE rds_iam NOLOGIN;

COMMENT ON ROLE rds_superuser IS 'Aurora: the master user''s role (CREATEROLE, CREATEDB, monitoring, signalling)';
COMMENT ON ROLE rds_replication IS 'Aurora: logical replication (not served by auroral yet)';
COMMENT ON ROLE rds_password IS 'Aurora: may change passwords when rds.restrict_password_commands = 1';
COMMENT ON ROLE rds_iam IS 'Aurora: members authenticate with IAM database tokens at the gateway';

-- rds_superuser sees every session (pg_read_all_stats through pg_monitor) and may cancel/terminate
-- non-superuser backends.
GRANT pg_monitor, pg_signal_backend TO rds_superuser;

-- The database "rdsadmin" is Aurora's private one; nobody but rdsadmin may connect to it.
-- (not created: it would grow every clone; the control plane uses "postgres")

-- Objects in the public schema of new databases follow PostgreSQL 15+ defaults (no CREATE for PUBLIC).
