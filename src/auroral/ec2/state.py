"""The EC2 state of every account: resources in memory, each written to the store before it
changes in memory (so a crash never leaves memory ahead of disk).

An account is loaded from the store on first use; if it has never been seen, its default network
is created then: the default VPC ``172.31.0.0/16``, one default subnet per availability zone, an
attached internet gateway and the VPC's default security group (ingress only from itself, egress
anywhere). ``version`` increases on every change, so readers (``Network``) can tell when to rebuild
their caches; listeners are told after each change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from auroral.ec2.model import (
    CLASS_BY_KIND,
    InternetGateway,
    Resource,
    Rule,
    SecurityGroup,
    Subnet,
    Vpc,
    from_doc,
    new_id,
)
from auroral.store import Store

R = TypeVar("R", bound=Resource)

DEFAULT_VPC_CIDR = "172.31.0.0/16"
DEFAULT_SUBNET_CIDRS = ("172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20")
_DEFAULTS_DONE = "defaults"


def availability_zones(region: str) -> tuple[str, ...]:
    return tuple(f"{region}{letter}" for letter in "abc")


class Account:
    """One account's resources, by ID."""

    def __init__(self) -> None:
        self.items: dict[str, Resource] = {}

    def get(self, resource_id: str, cls: type[R]) -> R | None:
        item = self.items.get(resource_id)
        return item if isinstance(item, cls) else None

    def all(self, cls: type[R]) -> Iterator[R]:
        for item in self.items.values():
            if isinstance(item, cls):
                yield item

    def rules_of(self, group_id: str) -> list[Rule]:
        return [r for r in self.all(Rule) if r.group_id == group_id]


class Ec2State:
    def __init__(self, store: Store, region: str) -> None:
        self._store = store
        self.region = region
        self._accounts: dict[str, Account] = {}
        self._lock = threading.RLock()
        self.version = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def account(self, account: str) -> Account:
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:
                acct = Account()
                for kind, cls in CLASS_BY_KIND.items():
                    for _a, _key, doc in self._store.list(f"ec2.{kind}", account):
                        item = from_doc(cls, doc)
                        acct.items[item.id] = item
                self._accounts[account] = acct
                if self._store.get("ec2.account", account, _DEFAULTS_DONE) is None:
                    self._create_defaults(account, acct)
            return acct

    def save(self, account: str, *items: Resource) -> None:
        """Persist, then apply: the items replace (or add to) the account's resources."""
        acct = self.account(account)
        with self._lock, self._store.transaction():
            for item in items:
                self._store.put(f"ec2.{item.kind}", account, item.id, item.to_doc())
        with self._lock:
            for item in items:
                acct.items[item.id] = item
            self._changed()

    def remove(self, account: str, *items: Resource) -> None:
        acct = self.account(account)
        with self._lock, self._store.transaction():
            for item in items:
                self._store.delete(f"ec2.{item.kind}", account, item.id)
        with self._lock:
            for item in items:
                acct.items.pop(item.id, None)
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        for listener in self._listeners:
            listener()

    # --- defaults ------------------------------------------------------------------------

    def _create_defaults(self, account: str, acct: Account) -> None:
        vpc, group, rules = new_vpc(DEFAULT_VPC_CIDR, is_default=True)
        subnets = [
            Subnet(id=new_id("subnet"), vpc_id=vpc.id, cidr=cidr, availability_zone=az, default_for_az=True,
                   map_public_ip_on_launch=True)
            for cidr, az in zip(DEFAULT_SUBNET_CIDRS, availability_zones(self.region), strict=True)
        ]
        igw = InternetGateway(id=new_id("igw"), vpc_id=vpc.id)
        items: list[Resource] = [vpc, group, *rules, *subnets, igw]
        with self._lock, self._store.transaction():
            for item in items:
                self._store.put(f"ec2.{item.kind}", account, item.id, item.to_doc())
            self._store.put("ec2.account", account, _DEFAULTS_DONE, {"vpc": vpc.id})
        for item in items:
            acct.items[item.id] = item
        self._changed()


def new_vpc(cidr: str, *, is_default: bool = False, tags: dict[str, str] | None = None,
            ) -> tuple[Vpc, SecurityGroup, list[Rule]]:
    """A VPC with its default security group: ingress from members of itself, egress anywhere."""
    vpc = Vpc(id=new_id("vpc"), cidr=cidr, is_default=is_default, main_route_table_id=new_id("rtb"),
              cidr_association_id=new_id("vpc-cidr-assoc"), tags=dict(tags or {}))
    group = SecurityGroup(id=new_id("sg"), vpc_id=vpc.id, name="default", description="default VPC security group")
    rules = [
        Rule(id=new_id("sgr"), group_id=group.id, egress=False, protocol="-1", referenced_group_id=group.id),
        Rule(id=new_id("sgr"), group_id=group.id, egress=True, protocol="-1", cidr_ipv4="0.0.0.0/0"),
    ]
    return vpc, group, rules
