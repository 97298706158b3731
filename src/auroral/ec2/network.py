"""The network view of the EC2 state, for the RDS side and the endpoint gateway.

``Network.decide`` is the accept-time verdict for one TCP connection to a database endpoint, the
way a VPC would decide it:

1. *reachability* — the client's address is inside the VPC's CIDR; or inside a static route of an
   available VPN connection whose virtual private gateway is attached to the VPC; or the instance is
   publicly accessible and the VPC has an attached internet gateway;
2. *security groups* — some ingress rule of the instance's groups (their union) admits TCP to the
   port from that address: by CIDR (IPv4 or IPv6), or because the address is the private address of
   a network interface in the VPC that carries the group the rule references. That includes the
   RDS-managed interfaces of DB instances (``ec2/managed.py``): a connection from a DB instance's
   address carries the cluster's groups, as traffic from the instance does in AWS.

The address given to ``decide`` is the one the VPC would see: callers pass the real peer address
through ``translate`` first (``AURORAL_NET_TRANSLATE``, e.g. ``127.10.0.0/16=10.0.0.0/16``, so that
loopback aliases stand for hosts inside a subnet). Lookups run on an index per account that is
rebuilt only after an EC2 change (``version`` tells callers that one happened).

``source_boundaries`` says where ``decide`` may change its verdict, as a function of the *real* source
address (before translation), so that the gateway can compile the verdict into a kernel filter by
asking ``decide`` once per interval (:mod:`auroral.gateway.synfilter`). Everything ``decide`` reads about
the address is a membership test: in a VPC CIDR, in a VPN route, in a rule's CIDR, equal to a network
interface's address, in a translation's source network. So between two consecutive boundaries — the
ends of each of those networks, mapped back through every translation that can reach them, and the
translations' own source networks — the verdict is constant (the source port is never read).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from auroral.ec2.model import (
    InternetGateway,
    NetworkInterface,
    Rule,
    SecurityGroup,
    Vpc,
    VpnConnection,
    VpnGateway,
)
from auroral.ec2.state import Ec2State

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TRANSLATE_ENV = "AURORAL_NET_TRANSLATE"


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str
    # The client's network interface, when its address is the private address of one in the VPC.
    interface_id: str | None = None
    # The security-group rule that admitted the connection.
    rule: str | None = None


@dataclass
class _Index:
    """One account's network facts, precomputed for ``decide``."""

    vpcs: dict[str, Vpc] = field(default_factory=dict)
    vpc_nets: dict[str, list[IpNetwork]] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    ingress: dict[str, list[tuple[Rule, IpNetwork | None]]] = field(default_factory=dict)
    igw: dict[str, str] = field(default_factory=dict)  # vpc -> attached internet gateway
    vpn_routes: dict[str, list[tuple[str, IpNetwork]]] = field(default_factory=dict)  # vpc -> (vpn, cidr)
    enis: dict[tuple[str, IpAddress], NetworkInterface] = field(default_factory=dict)  # (vpc, ip) -> eni


def parse_translation(spec: str) -> list[tuple[IpNetwork, IpNetwork]]:
    """``"127.10.0.0/16=10.0.0.0/16,127.20.0.0/16=192.168.0.0/16"`` -> pairs of equal-sized networks."""
    pairs: list[tuple[IpNetwork, IpNetwork]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        source, sep, target = part.replace("->", "=").partition("=")
        if not sep:
            raise ValueError(f"{TRANSLATE_ENV}: expected <from-cidr>=<to-cidr>, got {part!r}")
        src = ipaddress.ip_network(source.strip(), strict=False)
        dst = ipaddress.ip_network(target.strip(), strict=False)
        if src.version != dst.version or src.prefixlen != dst.prefixlen:
            raise ValueError(f"{TRANSLATE_ENV}: {src} and {dst} must be networks of the same size")
        pairs.append((src, dst))
    return pairs


def parse_ip(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _ports(rule: Rule) -> str:
    if rule.protocol == "-1":
        return "all traffic"
    if rule.from_port == rule.to_port:
        return f"{rule.protocol} {rule.from_port}"
    return f"{rule.protocol} {rule.from_port}-{rule.to_port}"


class Network:
    def __init__(self, state: Ec2State, translation: str | None = None) -> None:
        self._state = state
        spec = os.environ.get(TRANSLATE_ENV, "") if translation is None else translation
        self._translation = parse_translation(spec)
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[int, _Index]] = {}

    @property
    def version(self) -> int:
        return self._state.version

    # --- address translation ------------------------------------------------------------

    def translate(self, ip: str) -> str:
        address = parse_ip(ip)
        for src, dst in self._translation:
            if address.version == src.version and address in src:
                offset = int(address) - int(src.network_address)
                return str(ipaddress.ip_address(int(dst.network_address) + offset))
        return str(address)

    def add_translation(self, source: str, target: str) -> None:
        """One more pair, consulted after those already in force (``rds/addresses.py`` gives a VPC that
        no pair covers a loopback range of its own)."""
        for src, dst in parse_translation(f"{source}={target}"):
            with self._lock:
                if (src, dst) not in self._translation:
                    self._translation = [*self._translation, (src, dst)]

    def translations(self) -> list[tuple[IpNetwork, IpNetwork]]:
        return list(self._translation)

    def loopback_of(self, ip: str) -> str | None:
        """The loopback address that stands for VPC address ``ip``: the reverse of ``translate``, through
        the first pair whose loopback source range maps onto ``ip`` (and that ``translate`` maps back);
        None if no pair does."""
        address = parse_ip(ip)
        for src, dst in self._translation:
            if src.is_loopback and address.version == dst.version and address in dst:
                offset = int(address) - int(dst.network_address)
                candidate = str(ipaddress.ip_address(int(src.network_address) + offset))
                if self.translate(candidate) == str(address):  # not shadowed by an earlier pair
                    return candidate
        return None

    # --- lookups --------------------------------------------------------------------------

    def _index(self, account: str) -> _Index:
        version = self._state.version
        with self._lock:
            cached = self._indexes.get(account)
            if cached is not None and cached[0] == version:
                return cached[1]
        acct = self._state.account(account)  # may create the default network (a new version)
        version = self._state.version
        index = _Index()
        for vpc in acct.all(Vpc):
            index.vpcs[vpc.id] = vpc
            index.vpc_nets[vpc.id] = [ipaddress.ip_network(vpc.cidr, strict=False)]
        for group in acct.all(SecurityGroup):
            index.groups[group.id] = group
            index.ingress.setdefault(group.id, [])
        for rule in acct.all(Rule):
            if rule.egress:
                continue
            peer = rule.cidr_ipv4 or rule.cidr_ipv6
            net = ipaddress.ip_network(peer, strict=False) if peer else None
            index.ingress.setdefault(rule.group_id, []).append((rule, net))
        for igw in acct.all(InternetGateway):
            if igw.vpc_id:
                index.igw[igw.vpc_id] = igw.id
        vgw_vpc = {g.id: g.vpc_id for g in acct.all(VpnGateway) if g.vpc_id and g.state == "available"}
        for vpn in acct.all(VpnConnection):
            vpc_id = vgw_vpc.get(vpn.vpn_gateway_id)
            if vpc_id is None or vpn.state != "available":
                continue
            for cidr in vpn.routes:
                index.vpn_routes.setdefault(vpc_id, []).append((vpn.id, ipaddress.ip_network(cidr, strict=False)))
        for eni in acct.all(NetworkInterface):
            index.enis[(eni.vpc_id, parse_ip(eni.private_ip))] = eni
        with self._lock:
            self._indexes[account] = (version, index)
        return index

    def security_group_exists(self, account: str, group_id: str) -> bool:
        return group_id in self._index(account).groups

    def vpc_of_group(self, account: str, group_id: str) -> str | None:
        group = self._index(account).groups.get(group_id)
        return group.vpc_id if group else None

    def vpc_exists(self, account: str, vpc_id: str) -> bool:
        return vpc_id in self._index(account).vpcs

    def default_vpc(self, account: str) -> Vpc:
        for vpc in self._index(account).vpcs.values():
            if vpc.is_default:
                return vpc
        raise LookupError(f"account {account} has no default VPC")

    def default_security_group(self, account: str, vpc_id: str) -> str:
        for group in self._index(account).groups.values():
            if group.vpc_id == vpc_id and group.name == "default":
                return group.id
        raise LookupError(f"{vpc_id} has no default security group")

    def has_internet_gateway(self, account: str, vpc_id: str) -> bool:
        return vpc_id in self._index(account).igw

    # --- the verdict ----------------------------------------------------------------------

    def decide(self, account: str, *, vpc_id: str, security_group_ids: Sequence[str], publicly_accessible: bool,
               client_ip: str, port: int) -> Decision:
        index = self._index(account)
        try:
            address = parse_ip(client_ip)
        except ValueError:
            return Decision(False, f"not an IP address: {client_ip!r}")
        if vpc_id not in index.vpcs:
            return Decision(False, f"{vpc_id} does not exist")
        eni = index.enis.get((vpc_id, address))
        eni_id = eni.id if eni is not None else None
        route = self._route(index, vpc_id, address, publicly_accessible)
        if route is None:
            why = "instance not publicly accessible"
            if publicly_accessible:
                why = f"publicly accessible, but {vpc_id} has no internet gateway"
            return Decision(False, f"not routable: {address} is outside {vpc_id} and no VPN route covers it ({why})",
                            eni_id)
        carried = set(eni.group_ids) if eni is not None else set()
        for group_id in security_group_ids:
            for rule, net in index.ingress.get(group_id, ()):
                if rule.protocol not in ("tcp", "-1"):
                    continue
                if rule.protocol == "tcp" and not rule.from_port <= port <= rule.to_port:
                    continue
                if net is not None and net.version == address.version and address in net:
                    peer = str(rule.cidr_ipv4 or rule.cidr_ipv6)
                elif rule.referenced_group_id is not None and rule.referenced_group_id in carried:
                    peer = f"{rule.referenced_group_id} ({eni_id})"
                else:
                    continue
                return Decision(True, f"{group_id} {rule.id}: {_ports(rule)} from {peer}", eni_id,
                                rule.id)
        names = ", ".join(security_group_ids) or "(no security groups)"
        return Decision(False, f"no rule of {names} admits tcp {port} from {address}", eni_id)

    def source_boundaries(self, account: str, *, vpc_id: str, security_group_ids: Sequence[str]) -> set[int]:
        """The real IPv4 source addresses (as integers, in 1..2**32-1) at which ``decide`` for this VPC and
        these groups may change its verdict: constant between two consecutive ones (see the module doc).
        Keep it in step with ``decide``: every network or address ``decide`` tests the client against must
        be here (tests/ec2/test_source_boundaries.py checks it)."""
        index = self._index(account)
        targets: set[int] = set()  # in the address space the VPC sees (after translation)

        def add(net: IpNetwork) -> None:
            if net.version == 4:
                targets.update((int(net.network_address), int(net.broadcast_address) + 1))

        for net in index.vpc_nets.get(vpc_id, ()):
            add(net)
        for _, net in index.vpn_routes.get(vpc_id, ()):
            add(net)
        for group_id in security_group_ids:
            for _, rule_net in index.ingress.get(group_id, ()):
                if rule_net is not None:
                    add(rule_net)
        for (eni_vpc, address), _ in index.enis.items():
            if eni_vpc == vpc_id and address.version == 4:
                targets.update((int(address), int(address) + 1))
        return self._preimages(targets)

    def _preimages(self, targets: set[int]) -> set[int]:
        """``targets`` in the real address space: as they are (addresses no translation covers) and mapped
        back through every IPv4 translation whose target holds them, plus each translation's own ends."""
        out = set(targets)
        for src, dst in self._translation:
            if src.version != 4:
                continue
            first, size, base = int(src.network_address), src.num_addresses, int(dst.network_address)
            out.update((first, first + size))
            out.update(first + t - base for t in targets if base <= t <= base + size)
        return {b for b in out if 0 < b < 1 << 32}

    @staticmethod
    def _route(index: _Index, vpc_id: str, address: IpAddress, public: bool) -> str | None:
        """How ``address`` reaches the VPC: ``local``, ``vpn-… <cidr>``, ``igw-…``; None if it cannot."""
        if any(net.version == address.version and address in net for net in index.vpc_nets.get(vpc_id, ())):
            return "local"
        for vpn_id, net in index.vpn_routes.get(vpc_id, ()):
            if net.version == address.version and address in net:
                return f"{vpn_id} {net}"
        if public and vpc_id in index.igw:
            return index.igw[vpc_id]
        return None
