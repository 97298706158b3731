-- PostgreSQL 16+: CREATEROLE only manages roles on which the role holds ADMIN OPTION, so
-- rds_superuser holds it on each rds_* role. rds_iam is granted with INHERIT FALSE, SET FALSE: its
-- members would authenticate with IAM tokens, which the master user must not be forced into;
-- the gateway checks pg_has_role(user, 'rds_iam', 'USAGE').
GRANT rds_replication, rds_password TO rds_superuser WITH ADMIN OPTION;
GRANT rds_iam TO rds_superuser WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;
