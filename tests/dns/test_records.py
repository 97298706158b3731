"""The zone registry: per-owner replace, CNAME following, validation, listeners."""

from __future__ import annotations

import threading

import pytest

from auroral.dns.records import CNAME, A, InvalidRecord, Zone

W = "db1.cluster-abc123def456.us-east-1.rds.amazonaws.com"
I1 = "inst1.abc123def456.us-east-1.rds.amazonaws.com"
I2 = "inst2.abc123def456.us-east-1.rds.amazonaws.com"


def test_cname_chain_and_case_insensitive() -> None:
    zone = Zone()
    zone.replace("rds:1:us-east-1", {W: [CNAME(I1)], I1: [A("127.0.0.5")], I2: [A("127.0.0.6")]})
    assert zone.resolve(W.upper() + ".") == ["127.0.0.5"]
    assert zone.lookup(W) == [CNAME(I1)]
    assert zone.resolve("nope.rds.amazonaws.com") == []


def test_loop_is_safe() -> None:
    zone = Zone()
    zone.replace("o", {"a.example": [CNAME("b.example")], "b.example": [CNAME("a.example")]})
    assert zone.resolve("a.example") == []


def test_rotation_set_of_cnames() -> None:
    ro = "db1.cluster-ro-abc123def456.us-east-1.rds.amazonaws.com"
    zone = Zone()
    zone.replace("o", {ro: [CNAME(I1), CNAME(I2)], I1: [A("127.0.0.5")], I2: [A("127.0.0.6")]})
    assert zone.resolve(ro) == ["127.0.0.5", "127.0.0.6"]


def test_owners_do_not_clobber_each_other() -> None:
    zone = Zone()
    zone.replace("rds:1:us-east-1", {I1: [A("127.0.0.5")]})
    zone.replace("rds:2:us-east-1", {I2: [A("127.0.0.6")]})
    zone.replace("rds:1:us-east-1", {})
    assert zone.resolve(I1) == [] and zone.resolve(I2) == ["127.0.0.6"]
    zone.remove("rds:2:us-east-1")
    assert zone.names() == []


def test_two_zones_are_independent() -> None:
    one, two = Zone(), Zone()
    one.replace("rds:1:us-east-1", {I1: [A("127.0.0.5")]})
    assert two.resolve(I1) == []


@pytest.mark.parametrize(
    "name",
    ["", "-bad.example", "bad-.example", "a..b", "a b.example", "x" * 64 + ".example", "é.example", "a_b.example",
     "a.example\n127.0.0.1 evil", "a" * 250 + ".example"],
)
def test_invalid_names_are_rejected(name: str) -> None:
    zone = Zone()
    with pytest.raises(InvalidRecord):
        zone.replace("o", {name: [A("127.0.0.1")]})
    assert zone.names() == []


def test_invalid_records_are_rejected_all_or_nothing() -> None:
    zone = Zone()
    with pytest.raises(InvalidRecord):
        A("127.0.0.1 evil")
    with pytest.raises(InvalidRecord):
        zone.replace("o", {I1: [A("127.0.0.5")], I2: [CNAME(I1), A("127.0.0.6")]})
    with pytest.raises(InvalidRecord):
        CNAME("bad name.example")
    assert zone.names() == []


def test_listeners_fire_on_change_only() -> None:
    zone = Zone()
    calls: list[int] = []
    zone.add_listener(lambda z: calls.append(z.version))
    zone.add_listener(lambda z: [][0])  # a broken listener does not stop the others
    zone.replace("o", {I1: [A("127.0.0.5")]})
    zone.replace("o", {I1: [A("127.0.0.5")]})  # unchanged: no call
    zone.remove("o")
    assert len(calls) == 2 and calls[0] < calls[1]


def test_concurrent_replace() -> None:
    zone = Zone()

    def work(owner: str) -> None:
        for i in range(200):
            zone.replace(owner, {f"i{i}.{owner}.example": [A(f"127.0.0.{i % 250 + 1}")]})

    threads = [threading.Thread(target=work, args=(f"o{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(zone.names()) == 4
