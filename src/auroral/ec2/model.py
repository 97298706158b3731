"""EC2 resources as typed records.

Every resource has an AWS-style ID (``<prefix>-`` + 17 hex digits) and a tag map. Security-group
rules are resources of their own (``sgr-``), as in EC2 since 2021: that is what
``DescribeSecurityGroupRules``, ``ModifySecurityGroupRules`` and revoking by rule ID act on; the
``IpPermissions`` view of a group is computed from its rules. Records convert to plain dicts for
the store with ``to_doc`` / ``from_doc``.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

# resource type (as in ARNs, TagSpecifications and DescribeTags) by ID prefix
KIND_BY_PREFIX = {
    "vpc": "vpc",
    "subnet": "subnet",
    "sg": "security-group",
    "sgr": "security-group-rule",
    "eni": "network-interface",
    "igw": "internet-gateway",
    "cgw": "customer-gateway",
    "vgw": "vpn-gateway",
    "vpn": "vpn-connection",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def kind_of_id(resource_id: str) -> str | None:
    return KIND_BY_PREFIX.get(resource_id.rpartition("-")[0])


@dataclass
class Resource:
    kind: ClassVar[str] = ""
    id: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


R = TypeVar("R", bound=Resource)


def from_doc(cls: type[R], doc: dict[str, Any]) -> R:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names})


@dataclass
class Vpc(Resource):
    kind: ClassVar[str] = "vpc"
    cidr: str = ""
    is_default: bool = False
    main_route_table_id: str = ""
    cidr_association_id: str = ""
    tenancy: str = "default"


@dataclass
class Subnet(Resource):
    kind: ClassVar[str] = "subnet"
    vpc_id: str = ""
    cidr: str = ""
    availability_zone: str = ""
    default_for_az: bool = False
    map_public_ip_on_launch: bool = False


@dataclass
class SecurityGroup(Resource):
    kind: ClassVar[str] = "security-group"
    vpc_id: str = ""
    name: str = ""
    description: str = ""


@dataclass
class Rule(Resource):
    """One security-group rule: a protocol, a port range and exactly one peer."""

    kind: ClassVar[str] = "security-group-rule"
    group_id: str = ""
    egress: bool = False
    protocol: str = "-1"  # "tcp", "udp", "icmp", "icmpv6", "-1" or a protocol number
    from_port: int = -1
    to_port: int = -1
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    referenced_group_id: str | None = None
    prefix_list_id: str | None = None
    description: str | None = None

    def peer(self) -> str:
        return self.cidr_ipv4 or self.cidr_ipv6 or self.referenced_group_id or self.prefix_list_id or ""

    def same_permission(self, other: Rule) -> bool:
        """Whether two rules admit the same traffic (descriptions and tags do not count)."""
        return (self.group_id, self.egress, self.protocol, self.from_port, self.to_port, self.cidr_ipv4,
                self.cidr_ipv6, self.referenced_group_id, self.prefix_list_id) == (
            other.group_id, other.egress, other.protocol, other.from_port, other.to_port, other.cidr_ipv4,
            other.cidr_ipv6, other.referenced_group_id, other.prefix_list_id)


@dataclass
class NetworkInterface(Resource):
    kind: ClassVar[str] = "network-interface"
    subnet_id: str = ""
    vpc_id: str = ""
    private_ip: str = ""
    group_ids: list[str] = field(default_factory=list)
    description: str = ""
    mac_address: str = ""
    availability_zone: str = ""
    # An interface another service made and manages (RDS: "amazon-rds"): shown RequesterManaged and
    # in-use, attached to that service's resource; the account can look at it but not change or delete it.
    requester_id: str | None = None
    attachment_id: str | None = None
    attach_time: str | None = None  # ISO 8601
    # What it is attached to, for the managing service (a DbiResourceId); never shown in the API.
    attached_to: str | None = None


@dataclass
class InternetGateway(Resource):
    kind: ClassVar[str] = "internet-gateway"
    vpc_id: str | None = None


@dataclass
class CustomerGateway(Resource):
    kind: ClassVar[str] = "customer-gateway"
    type: str = "ipsec.1"
    bgp_asn: int = 65000
    ip_address: str = ""
    device_name: str | None = None
    state: str = "available"


@dataclass
class VpnGateway(Resource):
    kind: ClassVar[str] = "vpn-gateway"
    type: str = "ipsec.1"
    amazon_side_asn: int = 64512
    vpc_id: str | None = None
    state: str = "available"


@dataclass
class VpnConnection(Resource):
    kind: ClassVar[str] = "vpn-connection"
    type: str = "ipsec.1"
    customer_gateway_id: str = ""
    vpn_gateway_id: str = ""
    static_routes_only: bool = False
    routes: list[str] = field(default_factory=list)  # destination CIDR blocks
    state: str = "available"


RESOURCE_CLASSES: tuple[type[Resource], ...] = (
    Vpc, Subnet, SecurityGroup, Rule, NetworkInterface, InternetGateway, CustomerGateway, VpnGateway, VpnConnection,
)
CLASS_BY_KIND: dict[str, type[Resource]] = {cls.kind: cls for cls in RESOURCE_CLASSES}
