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
                       "(the gateway's flow records) and from the account's IAM policies.")

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

# auroral's own controls: what only the database's traffic shows (the gateway's flow records of the
# connections that ended in the last FLOW_WINDOW_HOURS; earlier runs' are read back from the flow log).
AURORAL_CONTROLS: tuple[Control, ...] = (
    Control("AURORAL.1", "Applications should not log in to Aurora PostgreSQL as the master user",
            "This control checks whether connections that logged in as the cluster's master user came from "
            "more than an administrator's session: any master-user login in the window fails it, with the "
            "source addresses and application_name values they came from as evidence.",
            "MEDIUM", "AwsRdsDbCluster", "AWS::RDS::DBCluster",
            "create a least-privilege role for each application (CREATE ROLE ... LOGIN; GRANT only what it "
            "needs) and keep the master user for administration",
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.MasterAccounts.html",
            standard="auroral-aurora-postgresql-practices/v/1.0.0"),
    Control("AURORAL.2", "Aurora PostgreSQL clusters that allow plaintext connections should not receive them",
            "This control checks whether a cluster whose rds.force_ssl is 0 received connections without TLS "
            "in the window (credentials and data crossed the network in the clear).",
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
)
FLOW_WINDOW_HOURS = 24

BY_ID: dict[str, Control] = {c.id: c for c in (*CONTROLS, *AURORAL_CONTROLS)}

# The controls of each standard auroral offers, in the order above.
STANDARDS: dict[str, tuple[str, str]] = {
    FSBP_ID: (FSBP_NAME, FSBP_DESCRIPTION),
    AURORAL_ID: (AURORAL_NAME, AURORAL_DESCRIPTION),
}
ALL_CONTROLS: tuple[Control, ...] = (*CONTROLS, *AURORAL_CONTROLS)


def controls_of(standard: str) -> list[Control]:
    return [c for c in ALL_CONTROLS if c.standard == standard]
