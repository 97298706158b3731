"""The Security Hub controls auroral evaluates: AWS's IDs, titles, severities and resource types
(AWS Foundational Security Best Practices v1.0.0, as the Security Hub user guide's control reference
lists them), each with the check in ``auroral.advisor.checks`` that decides it.

Controls of the standard that cannot apply to Aurora PostgreSQL are left out on purpose: RDS.14
(backtracking is Aurora MySQL only), RDS.25 (instance admin username: Aurora instances take the
cluster's, judged by RDS.24; Unconfirmed that AWS excludes Aurora instances).
"""

from __future__ import annotations

from dataclasses import dataclass

FSBP_ID = "aws-foundational-security-best-practices/v/1.0.0"
FSBP_NAME = "AWS Foundational Security Best Practices v1.0.0"
FSBP_DESCRIPTION = ("The AWS Foundational Security Best Practices standard is a set of controls that detect when "
                    "your deployed accounts and resources deviate from security best practices.")
AURORAL_ID = "auroral-aurora-postgresql-practices/v/1.0.0"
AURORAL_NAME = "auroral Aurora PostgreSQL practices v1.0.0"
AURORAL_DESCRIPTION = ("auroral's own controls, decided from what it sees of the databases' traffic "
                       "(the gateway's flow records), from the account's IAM policies and from inside "
                       "the databases (roles, passwords' storage, schema owners).")

_DOCS = "https://docs.aws.amazon.com/securityhub/latest/userguide/"


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    description: str
    severity: str  # CRITICAL | HIGH | MEDIUM | LOW
    resource_type: str  # the ASFF resource type of its findings
    config_type: str  # the AWS Config resource type the user guide names
    remediation: str  # what to do, in one sentence
    docs: str
    standard: str = FSBP_ID

    @property
    def remediation_url(self) -> str:
        return self.docs


CONTROLS: tuple[Control, ...] = (
    Control("RDS.2", "RDS DB Instances should prohibit public access, as determined by the PubliclyAccessible "
            "configuration",
            "This control checks whether Amazon RDS instances are publicly accessible by evaluating the "
            "PubliclyAccessible field in the instance configuration item.",
            "CRITICAL", "AwsRdsDbInstance", "AWS::RDS::DBInstance",
            "modify-db-instance --no-publicly-accessible", _DOCS + "rds-controls.html#rds-2"),
    Control("RDS.7", "RDS clusters should have deletion protection enabled",
            "This control checks whether an RDS DB cluster has deletion protection enabled.",
            "LOW", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "modify-db-cluster --deletion-protection", _DOCS + "rds-controls.html#rds-7"),
    Control("RDS.12", "IAM authentication should be configured for RDS clusters",
            "This control checks whether an RDS DB cluster has IAM database authentication enabled.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "modify-db-cluster --enable-iam-database-authentication --apply-immediately",
            _DOCS + "rds-controls.html#rds-12"),
    Control("RDS.24", "RDS Database clusters should use a custom administrator username",
            "This control checks whether an Amazon RDS database cluster has changed the admin username from "
            "its default value.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "create a new cluster with a master username other than postgres or admin",
            _DOCS + "rds-controls.html#rds-24"),
    Control("RDS.27", "RDS DB clusters should be encrypted at rest",
            "This control checks if an RDS DB cluster is encrypted at rest.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "restore the cluster's data into a new cluster created with --storage-encrypted",
            _DOCS + "rds-controls.html#rds-27"),
    Control("EC2.18", "Security groups should only allow unrestricted incoming traffic for authorized ports",
            "This control checks whether a security group permits unrestricted incoming traffic from "
            "0.0.0.0/0 or ::/0 to ports other than the authorized ports 80 and 443.",
            "HIGH", "AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup",
            "revoke-security-group-ingress for the unrestricted rule, or narrow its CIDR",
            _DOCS + "ec2-controls.html#ec2-18"),
    Control("EC2.19", "Security groups should not allow unrestricted access to ports with high risk",
            "This control checks whether unrestricted incoming traffic (0.0.0.0/0 or ::/0) is accessible to "
            "the security group's ports with high risk (PostgreSQL's 5432 among them).",
            "CRITICAL", "AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup",
            "revoke-security-group-ingress for the unrestricted rule, or narrow its CIDR",
            _DOCS + "ec2-controls.html#ec2-19"),
    Control("EC2.53", "EC2 security groups should not allow ingress from 0.0.0.0/0 to remote server "
            "administration ports",
            "This control checks whether a security group allows ingress from 0.0.0.0/0 to remote server "
            "administration ports (22, 3389).",
            "HIGH", "AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup",
            "revoke-security-group-ingress for the 0.0.0.0/0 rule on 22/3389", _DOCS + "ec2-controls.html#ec2-53"),
    Control("EC2.54", "EC2 security groups should not allow ingress from ::/0 to remote server administration "
            "ports",
            "This control checks whether a security group allows ingress from ::/0 to remote server "
            "administration ports (22, 3389).",
            "HIGH", "AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup",
            "revoke-security-group-ingress for the ::/0 rule on 22/3389", _DOCS + "ec2-controls.html#ec2-54"),
    Control("IAM.1", "IAM policies should not allow full \"*\" administrative privileges",
            "This control checks whether the default version of a customer managed IAM policy allows "
            "\"Effect\": \"Allow\" with \"Action\": \"*\" over \"Resource\": \"*\".",
            "HIGH", "AwsIamPolicy", "AWS::IAM::Policy",
            "create a policy version granting only the actions needed and make it the default",
            _DOCS + "iam-controls.html#iam-1"),
    Control("IAM.4", "IAM root user access key should not exist",
            "This control checks whether the root user access key is available.",
            "CRITICAL", "AwsAccount", "AWS::::Account",
            "work as an IAM user or role and delete-access-key the root user's keys",
            _DOCS + "iam-controls.html#iam-4"),
    Control("KMS.3", "AWS KMS keys should not be deleted unintentionally",
            "This control checks whether KMS keys are scheduled for deletion.",
            "CRITICAL", "AwsKmsKey", "AWS::KMS::Key",
            "cancel-key-deletion if the deletion was not intended", _DOCS + "kms-controls.html#kms-3"),
    Control("SecretsManager.1", "Secrets Manager secrets should have automatic rotation enabled",
            "This control checks whether a secret stored in AWS Secrets Manager is configured with automatic "
            "rotation.",
            "MEDIUM", "AwsSecretsManagerSecret", "AWS::SecretsManager::Secret",
            "rotate-secret with a rotation schedule", _DOCS + "secretsmanager-controls.html#secretsmanager-1"),
    Control("SecretsManager.4", "Secrets Manager secrets should be rotated within a specified number of days",
            "This control checks whether a secret has been rotated at least once within 90 days.",
            "MEDIUM", "AwsSecretsManagerSecret", "AWS::SecretsManager::Secret",
            "rotate-secret", _DOCS + "secretsmanager-controls.html#secretsmanager-4"),
)

# auroral's own controls: what only the database's traffic shows (the gateway's logins of the last
# FLOW_WINDOW_HOURS: the connections open now, counted from their login, and those that ended, from their
# close records; earlier runs' are read back from the flow log),
# the account's IAM policies, and the inside of the databases.
AURORAL_CONTROLS: tuple[Control, ...] = (
    # The rule (auroral.advisor.master_use): over the window, a source address outside the cluster's
    # designated administration hosts (the cluster tag ADMIN_HOSTS_TAG: CIDRs) whose master-user logins
    # look like an application's: an application_name that is not an administration tool, or
    # REPEATED_LOGINS or more logins, or CONCURRENT_SESSIONS or more sessions open at once. An
    # occasional psql session from anywhere passes; anything from an administration host passes.
    Control("AURORAL.1", "Applications should not log in to Aurora PostgreSQL as the master user",
            "This control checks whether the cluster's master user was used the way an application uses a "
            "login in the window: a source address outside the cluster's administration hosts (the tag "
            "auroral:admin-hosts, comma-separated CIDRs) that logged in as the master user with an "
            "application_name that is not an administration tool (psql, pg_dump, pg_restore, pgAdmin, "
            "DBeaver, DataGrip, pgcli), or 10 or more times, or in 2 or more sessions at once. The evidence "
            "names each such source (address, the endpoint's network interface and security groups, "
            "application_name values, count and rate), the flow records (the sessions still open among "
            "them: a login counts from the moment it happens), the audit events of IAM database logins, "
            "and the least-privilege role to create instead.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "create a least-privilege role for each application (the finding's SuggestedRole: CREATE ROLE "
            "... LOGIN; GRANT only what it needs) and keep the master user for administration, from the "
            "hosts the cluster's auroral:admin-hosts tag names",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.MasterAccounts.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    Control("AURORAL.2", "Aurora PostgreSQL clusters that allow plaintext connections should not receive them",
            "This control checks whether a cluster whose rds.force_ssl is 0 received connections without TLS "
            "in the window (credentials and data crossed the network in the clear); a connection counts "
            "from its login, while it is still open.",
            "HIGH", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "set rds.force_ssl to 1 in the cluster's parameter group and connect with sslmode=verify-full",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # Decided from IAM policies, not traffic: account-wide (home region only), per user and role;
    # its findings' resource type is AwsIamUser or AwsIamRole (the one below is the users').
    Control("AURORAL.3", "Principals that can create or modify an Aurora cluster without a managed master "
            "password",
            "This control checks, with the same policy evaluation that authorizes API calls (explicit "
            "Denies, permissions boundaries, condition keys), whether an IAM user or role could call "
            "rds:CreateDBCluster with rds:ManageMasterUserPassword false, or rds:ModifyDBCluster (which can "
            "set MasterUserPassword: the path a Deny on CreateDBCluster alone leaves open).",
            "MEDIUM", "AwsIamUser", "AWS::IAM::User",
            "deny rds:CreateDBCluster and rds:ModifyDBCluster (and rds:CreateDBInstance, "
            "rds:ModifyDBInstance) when the Bool condition rds:ManageMasterUserPassword is false, "
            "in the principal's policies or its permissions boundary",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-secrets-manager.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # Decided from inside the database (auroral.advisor.inside), read by the control plane as rdsadmin
    # on the writer (auroral.advisor.database): one finding per cluster each, naming the roles. The
    # engine's own roles (rdsadmin, rdsrepladmin, rds_superuser, rds_iam, rds_password,
    # rds_replication) and PostgreSQL's pg_* roles are never named.
    # HIGH: a login in rds_superuser is the master's equal (every role, every object's grants).
    Control("AURORAL.4", "Login roles other than the master user should not be members of rds_superuser",
            "This control checks whether any role that can log in, other than the cluster's master user, is a "
            "member of rds_superuser, directly or through other roles.",
            "HIGH", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "REVOKE rds_superuser FROM the role (and from the roles it inherits through), and GRANT it only "
            "the privileges it needs",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # HIGH: up to PostgreSQL 15 a CREATEROLE role can grant itself any non-superuser role, rds_superuser
    # included; from 16 it still creates logins and administers the roles it made. The master has
    # CREATEROLE by design (Aurora's master attributes) and is not named.
    Control("AURORAL.5", "Roles other than the master user should not have CREATEROLE",
            "This control checks whether any role other than the cluster's master user has the CREATEROLE "
            "attribute (before PostgreSQL 16, CREATEROLE can grant membership in rds_superuser).",
            "HIGH", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "ALTER ROLE ... NOCREATEROLE for each role named, and create roles as the master user",
            "https://www.postgresql.org/docs/current/role-attributes.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # MEDIUM: an MD5 hash is a password equivalent (MD5 authentication accepts it as is) and a weak
    # one to crack; auroral's endpoints require SCRAM, so such a role cannot even log in until reset.
    Control("AURORAL.6", "Role passwords should be stored as SCRAM-SHA-256, not MD5",
            "This control checks whether any role's stored password is an MD5 hash (pg_authid.rolpassword "
            "starting with md5) rather than a SCRAM-SHA-256 verifier. Only role names are reported, never "
            "the hash.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "SET password_encryption = 'scram-sha-256' and set each named role's password again "
            "(\\password in psql), or remove it",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # LOW: auroral's endpoints take only a password (SCRAM) or, for members of rds_iam on a cluster
    # with IAM database authentication, a token. A LOGIN role with neither cannot log in today: it is
    # a broken application login or a dormant one that the next ALTER ROLE ... PASSWORD or GRANT
    # rds_iam opens without anyone deciding that it should log in. The rule: LOGIN, no stored
    # password, not a member of rds_iam. NOLOGIN says what is meant.
    Control("AURORAL.7", "Login roles should have a password or be IAM database users",
            "This control checks whether any role with LOGIN has no password and is not a member of rds_iam: "
            "auroral's endpoints accept only a password or an IAM authentication token, so such a role "
            "cannot log in, and is opened by whoever later sets its password or grants it rds_iam.",
            "LOW", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "ALTER ROLE ... NOLOGIN for a role that is not meant to log in; else GRANT rds_iam TO it (with "
            "IAM database authentication) or set a password (\\password in psql)",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.IAMDBAuth.DBAccounts.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # MEDIUM. The rule: a role other than the master user (AURORAL.1's business) that logged in at the
    # endpoints in the window and owns a schema (or the tables in it) with rows written
    # (pg_stat_user_tables n_tup_ins + n_tup_upd + n_tup_del > 0). Limits: PostgreSQL does not record
    # which role wrote, so the owner is presumed to be the writer when it logs in; the counters start
    # again after a statistics reset or a restore; databases past the 64th are not read.
    Control("AURORAL.8", "Applications should not log in as the owner of the schema they write",
            "This control checks whether a role that logs in through the cluster's endpoints (other than the "
            "master user) owns a schema, or the tables in it, whose tables have rows written: an owner "
            "bypasses the grants on its objects and can ALTER or DROP them, so a compromised application "
            "can destroy its data, not only change it.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "keep the schema and its tables owned by a NOLOGIN owner role (ALTER SCHEMA ... OWNER TO, "
            "REASSIGN OWNED BY) and GRANT the application's login role USAGE and SELECT, INSERT, UPDATE, "
            "DELETE only",
            "https://www.postgresql.org/docs/current/ddl-priv.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    # LOW: IAM database authentication on with no member of rds_iam means passwords are still the only
    # way in; RDS.12 passes on the setting alone.
    Control("AURORAL.9", "Clusters with IAM database authentication enabled should have IAM database users",
            "This control checks whether a cluster with IAM database authentication enabled has at least one "
            "login role (other than the engine's own) that is a member of rds_iam.",
            "LOW", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "CREATE ROLE ... LOGIN; GRANT rds_iam TO it, and let the applications log in with "
            "generate-db-auth-token",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.IAMDBAuth.DBAccounts.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
)
FLOW_WINDOW_HOURS = 24
ADMIN_HOSTS_TAG = "auroral:admin-hosts"  # AURORAL.1: the cluster's administration hosts (CIDRs)
REPEATED_LOGINS = 10  # AURORAL.1: master logins from one source in the window that make a pattern
CONCURRENT_SESSIONS = 2  # AURORAL.1: master sessions open at once from one source

BY_ID: dict[str, Control] = {c.id: c for c in (*CONTROLS, *AURORAL_CONTROLS)}

# The controls of each standard auroral offers, in the order above.
STANDARDS: dict[str, tuple[str, str]] = {
    FSBP_ID: (FSBP_NAME, FSBP_DESCRIPTION),
    AURORAL_ID: (AURORAL_NAME, AURORAL_DESCRIPTION),
}
ALL_CONTROLS: tuple[Control, ...] = (*CONTROLS, *AURORAL_CONTROLS)


def controls_of(standard: str) -> list[Control]:
    return [c for c in ALL_CONTROLS if c.standard == standard]
