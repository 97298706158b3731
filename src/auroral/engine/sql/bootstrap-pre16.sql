-- PostgreSQL <= 15: membership WITH ADMIN OPTION lets rds_superuser members grant these roles.
-- (CREATEROLE alone already allows granting any non-superuser role on these majors.)
GRANT rds_replication, rds_password TO rds_superuser WITH ADMIN OPTION;
