"""Aurora PostgreSQL engine versions: the minors AWS offers, limited to the majors the runtime
can actually run (``ClusterRuntime.available_majors``). A requested ``EngineVersion`` runs on
its major; Describe reports the version that was asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auroral.errors import invalid_parameter_combination
from auroral.rds.base import RdsBase, paginate
from auroral.rds.model import ENGINE

# Common Aurora PostgreSQL minor versions per major, oldest first. The last one of each major is
# its default (AWS's defaults move; these are recent ones).
MINORS: dict[int, tuple[str, ...]] = {
    11: ("11.9", "11.21"),
    12: ("12.9", "12.15", "12.22"),
    13: ("13.9", "13.12", "13.15", "13.20"),
    14: ("14.6", "14.9", "14.12", "14.17"),
    15: ("15.3", "15.4", "15.6", "15.8", "15.10", "15.12"),
    16: ("16.1", "16.2", "16.4", "16.6", "16.8"),
    17: ("17.4", "17.5"),
}


@dataclass(frozen=True)
class EngineVersion:
    version: str
    major: int

    @property
    def family(self) -> str:
        return f"{ENGINE}{self.major}"


def family_of(major: int) -> str:
    return f"{ENGINE}{major}"


def default_group_name(major: int) -> str:
    return f"default.{family_of(major)}"


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
        return versions[-1]

    def resolve_version(self, requested: str | None) -> EngineVersion:
        if not requested:
            return self.default_version()
        for v in self.engine_versions():
            if v.version == requested:
                return v
        raise invalid_parameter_combination(f"Cannot find version {requested} for {ENGINE}")

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
            versions = [v for v in versions if v == default] or versions[-1:]
        items, marker = paginate(versions, lambda v: f"{v.major:04d}-{v.version}", params)
        out: dict[str, Any] = {"DBEngineVersions": [self._version_view(v) for v in items]}
        if marker:
            out["Marker"] = marker
        return out

    def _version_view(self, v: EngineVersion) -> dict[str, Any]:
        later = [e.version for e in self.engine_versions() if e.major == v.major and _newer(e.version, v.version)]
        return {
            "Engine": ENGINE,
            "EngineVersion": v.version,
            "MajorEngineVersion": str(v.major),
            "DBParameterGroupFamily": v.family,
            "DBEngineDescription": "Aurora (PostgreSQL)",
            "DBEngineVersionDescription": f"Aurora PostgreSQL (Compatible with PostgreSQL {v.version})",
            "ValidUpgradeTarget": [
                {"Engine": ENGINE, "EngineVersion": t, "Description": f"Aurora PostgreSQL (Compatible with PostgreSQL {t})",
                 "AutoUpgrade": False, "IsMajorVersionUpgrade": False}
                for t in later
            ],
            "ExportableLogTypes": ["postgresql"],
            "SupportsLogExportsToCloudwatchLogs": True,
            "SupportsReadReplica": True,
            "SupportedEngineModes": ["provisioned"],
            "SupportedFeatureNames": [],
            "Status": "available",
            "SupportsParallelQuery": False,
            "SupportsGlobalDatabases": False,
            "SupportsBabelfish": False,
            "SupportsCertificateRotationWithoutRestart": True,
            "SupportedCACertificateIdentifiers": ["rds-ca-rsa2048-g1"],
            "SupportsLocalWriteForwarding": False,
            "SupportsIntegrations": False,
        }


def _newer(a: str, b: str) -> bool:
    return tuple(int(x) for x in a.split(".")) > tuple(int(x) for x in b.split("."))
