"""Endpoint names on this machine: the zone of records, a DNS server for it, and an /etc/hosts block.

``records`` holds the registry (:class:`~auroral.dns.records.Zone`) the RDS side fills; ``server``
answers DNS queries for it; ``hosts`` mirrors it into a managed block of a hosts file.
"""

from auroral.dns.records import CNAME, A, InvalidRecord, Record, Zone, normalize_name

__all__ = ["CNAME", "A", "InvalidRecord", "Record", "Zone", "normalize_name"]
