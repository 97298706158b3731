"""Aurora PostgreSQL engine versions: the minors AWS offers, limited to the majors the runtime
can actually run (``ClusterRuntime.available_majors``), what ``DescribeDBEngineVersions`` says about
each (parameter group family, feature names, valid upgrade targets), which version changes
``ModifyDBCluster`` accepts (:meth:`EngineVersionOperations.check_upgrade`), and
``DescribeOrderableDBInstanceOptions``.

A requested ``EngineVersion`` runs on its major; Describe reports the version that was asked for.

Versions come in quarterly *waves* (AWS releases a minor of every supported major together). AWS's
documented major upgrade targets follow one rule: a source minor may move to the minors of a higher
major released in the same wave or later (the Aurora user guide's table "Major version upgrade
targets", e.g. 15.12 → 16.8, 16.9, 17.4, 17.5 and 15.13 → 16.9, 17.5). Minor upgrade targets are the
newer minors of the same major.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auroral.errors import invalid_parameter_combination, invalid_parameter_value
from auroral.rds.base import RdsBase, paginate
from auroral.rds.model import ENGINE

# Aurora PostgreSQL releases, oldest wave first; each wave is what AWS released together. The list
# follows AWS's release notes through 2025 (17.9, 17.10, 13.23 seen in AWS's own answers since);
# the 2026 minors of 14-16 follow PostgreSQL's community releases of the same waves. Unconfirmed
# beyond 2025: keep it easy to change (one line a wave). Aurora PostgreSQL 18 is offered by mid-2026
# (AWS's extension-versions page has an "Aurora PostgreSQL 18" section and AWS's database blog of
# June 2026 runs PostgreSQL 18 on Aurora); its minors here follow the community's releases of the
# same waves (Unconfirmed: which 18 minor Aurora launched with).
RELEASE_WAVES: tuple[tuple[str, ...], ...] = (
    ("13.9", "14.6"),  # 2023-01
    ("13.12", "14.9", "15.4"),  # 2023-09
    ("16.1",),  # 2024-01
    ("15.6", "16.2"),  # 2024-03
    ("16.3",),  # 2024-06
    ("13.15", "14.12", "15.8", "16.4"),  # 2024-08
    ("13.18", "14.15", "15.10", "16.6"),  # 2024-12
    ("13.20", "14.17", "15.12", "16.8", "17.4"),  # 2025-04
    ("13.21", "14.18", "15.13", "16.9", "17.5"),  # 2025-06
    ("13.22", "14.19", "15.14", "16.10", "17.6"),  # 2025-09
    ("13.23", "14.20", "15.15", "16.11", "17.7"),  # 2025-12
    ("14.22", "15.17", "16.13", "17.9", "18.3"),  # 2026-05
    ("14.23", "15.18", "16.14", "17.10", "18.4"),  # 2026-09
)

# DescribeDBEngineVersions DefaultOnly=true: AWS's default moves with time; Unconfirmed which minor it
# is at the end of 2026 (a 17 minor from 2025 is the plausible choice). When its major is not served
# here, the newest version auroral serves is the default.
DEFAULT_VERSION = "17.7"

# SupportedFeatureNames of Aurora PostgreSQL (the feature names AddRoleToDBCluster takes): s3Import and
# s3Export from 10.7/11+, Lambda from 11.9/12.4+, SageMaker and Comprehend from 11.9/12.4+, Bedrock from
# 15.4/16+ (Aurora machine learning). auroral implements none of them (AddRoleToDBCluster is not
# served); the list is the version's metadata, as AWS describes it.
_FEATURES_ALL = ("Comprehend", "Lambda", "s3Export", "s3Import", "SageMaker")
_BEDROCK_FROM = (15, 4)

# Aurora Limitless Database runs only on its own "-limitless" versions; none is listed here.
_LOG_TYPES = ("postgresql", "instance", "iam-db-auth-error")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


_WAVE_OF: dict[str, int] = {v: i for i, wave in enumerate(RELEASE_WAVES) for v in wave}
MINORS: dict[int, tuple[str, ...]] = {
    major: tuple(sorted((v for v in _WAVE_OF if _key(v)[0] == major), key=_key))
    for major in sorted({_key(v)[0] for v in _WAVE_OF})
}


@dataclass(frozen=True)
class EngineVersion:
    version: str
    major: int

    @property
    def family(self) -> str:
        return f"{ENGINE}{self.major}"


@dataclass(frozen=True)
class UpgradePlan:
    """An accepted ``ModifyDBCluster EngineVersion``: where the cluster goes, with which parameter group."""

    version: str
    major: int
    parameter_group: str
    is_major: bool


def family_of(major: int) -> str:
    return f"{ENGINE}{major}"


def default_group_name(major: int) -> str:
    return f"default.{family_of(major)}"


def describe(version: str) -> str:
    return f"Aurora PostgreSQL (Compatible with PostgreSQL {version})"


def is_upgrade_target(source: str, target: str) -> bool:
    """Whether AWS lets a cluster of ``source`` move to ``target`` (see the module docstring)."""
    if source not in _WAVE_OF or target not in _WAVE_OF:
        return False
    s, t = _key(source), _key(target)
    if t[0] == s[0]:
        return t > s
    return t[0] > s[0] and _WAVE_OF[target] >= _WAVE_OF[source]


def supported_features(version: str) -> list[str]:
    names = list(_FEATURES_ALL)
    if _key(version)[:2] >= _BEDROCK_FROM:
        names.append("Bedrock")
    return sorted(names, key=str.lower)


class EngineVersionOperations(RdsBase):
    def engine_versions(self) -> list[EngineVersion]:
        majors = set(self.runtime.available_majors())
        return [EngineVersion(v, m) for m in sorted(MINORS) if m in majors for v in MINORS[m]]

    def families(self) -> list[str]:
        return sorted({v.family for v in self.engine_versions()})

    def default_version(self) -> EngineVersion:
        versions = self.engine_versions()
        if not versions:
            raise invalid_parameter_combination(f"Cannot find any available version for {ENGINE}")
        return next((v for v in versions if v.version == DEFAULT_VERSION), versions[-1])

    def resolve_version(self, requested: str | None) -> EngineVersion:
        if not requested:
            return self.default_version()
        for v in self.engine_versions():
            if v.version == requested:
                return v
        raise invalid_parameter_combination(f"Cannot find version {requested} for {ENGINE}")

    def check_upgrade(self, current: str, requested: str, allow_major: bool) -> EngineVersion:
        """The version ``ModifyDBCluster EngineVersion=requested`` moves a cluster of ``current`` to, or
        AWS's refusal (all ``InvalidParameterCombination``). The order of the checks is AWS's as far as
        public captures show: an unknown version, then a downgrade or an unsupported path, then the
        missing ``AllowMajorVersionUpgrade``."""
        target = next((v for v in self.engine_versions() if v.version == requested), None)
        if target is None:
            raise invalid_parameter_combination(f"Cannot find version {requested} for {ENGINE}")
        if not is_upgrade_target(current, requested):
            # captured from AWS ("Cannot upgrade aurora-postgresql from 12.11 to 13.6")
            raise invalid_parameter_combination(f"Cannot upgrade {ENGINE} from {current} to {requested}")
        if _key(requested)[0] != _key(current)[0] and not allow_major:
            raise invalid_parameter_combination(
                "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version."
            )
        return target

    def DescribeDBEngineVersions(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        engine = params.get("Engine")
        versions = self.engine_versions() if engine in (None, "", ENGINE) else []
        if params.get("EngineVersion"):
            wanted = str(params["EngineVersion"])
            # AWS matches a major-only value ("16") against every minor of that major.
            versions = [v for v in versions if v.version == wanted or str(v.major) == wanted]
        if params.get("DBParameterGroupFamily"):
            versions = [v for v in versions if v.family == params["DBParameterGroupFamily"]]
        if params.get("DefaultOnly") and versions:
            default = self.default_version()
            # the default of the major asked for: its newest minor (Unconfirmed: AWS may pick another)
            versions = [v for v in versions if v == default] or versions[-1:]
        items, marker = paginate(versions, lambda v: f"{v.major:04d}-{_key(v.version)[1]:04d}", params)
        out: dict[str, Any] = {"DBEngineVersions": [self._version_view(v) for v in items]}
        if marker:
            out["Marker"] = marker
        return out

    def _version_view(self, v: EngineVersion) -> dict[str, Any]:
        targets = [e for e in self.engine_versions() if is_upgrade_target(v.version, e.version)]
        return {
            "Engine": ENGINE,
            "EngineVersion": v.version,
            "MajorEngineVersion": str(v.major),
            "DBParameterGroupFamily": v.family,
            "DBEngineDescription": "Aurora (PostgreSQL)",
            "DBEngineVersionDescription": describe(v.version),
            "ValidUpgradeTarget": [
                {
                    "Engine": ENGINE,
                    "EngineVersion": t.version,
                    "Description": describe(t.version),
                    # RDS's automatic minor upgrades are off in auroral (no maintenance window runs them)
                    "AutoUpgrade": False,
                    "IsMajorVersionUpgrade": t.major != v.major,
                    "SupportedEngineModes": ["provisioned"],
                    "SupportsParallelQuery": False,
                    "SupportsGlobalDatabases": False,
                    "SupportsBabelfish": False,
                    "SupportsLimitlessDatabase": False,
                    "SupportsLocalWriteForwarding": False,
                    "SupportsIntegrations": False,
                }
                for t in targets
            ],
            "ExportableLogTypes": list(_LOG_TYPES),
            "SupportsLogExportsToCloudwatchLogs": True,
            "SupportsReadReplica": True,
            "SupportedEngineModes": ["provisioned"],
            "SupportedFeatureNames": supported_features(v.version),
            "Status": "available",
            "SupportsParallelQuery": False,
            "SupportsGlobalDatabases": False,
            "SupportsBabelfish": False,
            "SupportsLimitlessDatabase": False,
            "SupportsCertificateRotationWithoutRestart": True,
            "SupportedCACertificateIdentifiers": ["rds-ca-rsa2048-g1"],
            "SupportsLocalWriteForwarding": False,
            "SupportsIntegrations": False,
            "TagList": [],
        }

    def DescribeOrderableDBInstanceOptions(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        """One option per (engine version, instance class): Aurora storage, in a VPC, in the region's
        zones. ``Engine`` is required (botocore's model); another engine has no options here."""
        from auroral.rds.instances import INSTANCE_CLASSES  # instances.py builds on this module

        engine = str(params.get("Engine") or "")
        if not engine:
            raise invalid_parameter_value("The parameter Engine must be provided and must not be blank.")
        if params.get("Filters"):
            # Unconfirmed wording: RDS documents no filter for this operation.
            raise invalid_parameter_value("Unrecognized filter name: " + str(params["Filters"][0].get("Name")))
        versions = self.engine_versions() if engine == ENGINE else []
        if params.get("EngineVersion"):
            versions = [v for v in versions if v.version == str(params["EngineVersion"])]
        classes = sorted(INSTANCE_CLASSES)
        if params.get("DBInstanceClass"):
            classes = [c for c in classes if c == str(params["DBInstanceClass"])]
        license_model = params.get("LicenseModel")
        if license_model and license_model != "postgresql-license":
            versions = []
        if params.get("Vpc") is False:  # Aurora runs in a VPC only
            versions = []
        if params.get("AvailabilityZoneGroup"):
            versions = []  # only Local Zones have groups of their own (Unconfirmed for Aurora)
        options = [(v, c) for v in versions for c in classes]
        zones = [{"Name": f"{self.region}{z}"} for z in "abc"]
        items, marker = paginate(
            options, lambda o: f"{o[0].major:04d}-{_key(o[0].version)[1]:04d}-{o[1]}", params)
        out: dict[str, Any] = {"OrderableDBInstanceOptions": [
            {
                "Engine": ENGINE,
                "EngineVersion": v.version,
                "DBInstanceClass": c,
                "LicenseModel": "postgresql-license",
                "AvailabilityZones": zones,
                "MultiAZCapable": False,
                "ReadReplicaCapable": False,
                "Vpc": True,
                "SupportsStorageEncryption": True,
                "StorageType": "aurora",
                "SupportsIops": False,
                "SupportsStorageThroughput": False,
                "SupportsEnhancedMonitoring": True,
                "SupportsIAMDatabaseAuthentication": True,
                "SupportsPerformanceInsights": c not in ("db.t3.medium", "db.t4g.medium"),
                "SupportedEngineModes": ["provisioned"],
                "SupportsStorageAutoscaling": False,
                "SupportsKerberosAuthentication": True,
                "OutpostCapable": False,
                "SupportedActivityStreamModes": ["async"],
                "SupportsGlobalDatabases": False,
                "SupportedNetworkTypes": ["IPV4", "DUAL"],
                "SupportsClusters": False,
                "SupportsDedicatedLogVolume": False,
                "SupportsHttpEndpoint": False,
            }
            for v, c in items
        ]}
        if marker:
            out["Marker"] = marker
        return out
