"""``DescribeCertificates``: the installation's CA (``auroral.gateway.tls``) as an AWS certificate entry,
and the ``CertificateDetails`` clusters and instances report.

AWS lists several CAs; an installation has one, named like Amazon's (``rds-ca-rsa2048-g1``), which
signs every endpoint's server certificate. Its bundle is what ``auroral ca --path`` prints.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from auroral.api.context import RequestContext
from auroral.rds.base import RdsBase, filter_values, paginate, rds_error
from auroral.rds.views import CA_IDENTIFIER
from auroral.regions import partition_of


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class CertificateOperations(RdsBase):
    ca_certificate: x509.Certificate | None = None

    def attach_ca(self, certificate: x509.Certificate) -> None:
        self.ca_certificate = certificate

    def certificate_details(self) -> dict[str, Any] | None:
        if self.ca_certificate is None:
            return None
        return {"CAIdentifier": CA_IDENTIFIER, "ValidTill": _utc(self.ca_certificate.not_valid_after_utc)}

    def _certificate_entry(self, account: str, cert: x509.Certificate) -> dict[str, Any]:
        der = cert.public_bytes(serialization.Encoding.DER)
        return {
            "CertificateIdentifier": CA_IDENTIFIER,
            "CertificateType": "CA",
            "Thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest(),
            "ValidFrom": _utc(cert.not_valid_before_utc),
            "ValidTill": _utc(cert.not_valid_after_utc),
            "CertificateArn": f"arn:{partition_of(self.region)}:rds:{self.region}:{account}:cert:{CA_IDENTIFIER}",
            "CustomerOverride": False,
        }

    def DescribeCertificates(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        filter_values(params, ())  # AWS documents no filters for this call
        entries = [] if self.ca_certificate is None else [self._certificate_entry(ctx.account, self.ca_certificate)]
        wanted = params.get("CertificateIdentifier")
        if wanted:
            entries = [e for e in entries if e["CertificateIdentifier"] == wanted]
            if not entries:
                # Unconfirmed wording.
                raise rds_error("CertificateNotFoundFault", f"Certificate {wanted} not found.")
        items, marker = paginate(entries, lambda e: str(e["CertificateIdentifier"]), params)
        out: dict[str, Any] = {"DefaultCertificateForNewLaunches": CA_IDENTIFIER, "Certificates": items}
        if marker:
            out["Marker"] = marker
        return out
