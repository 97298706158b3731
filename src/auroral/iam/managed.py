"""AWS-managed policies (``arn:aws:iam::aws:policy/...``).

The documents are the real default versions, copied at build time into ``managed_policies.json``
(see its ``_source``). They are read-only and shared by every account; attachment counts are
computed from the account's entities, not stored here.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from auroral.iam.model import ManagedPolicy, PolicyVersion, parse_ts

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"


def _stable_id(name: str) -> str:
    # AWS-managed policies have fixed ids (ANPA...); derive a stable one from the name.
    digest = hashlib.sha256(name.encode()).hexdigest().upper()
    alnum = "".join(c for c in digest if c.isalnum())
    return "ANPA" + alnum[:16]


@cache
def aws_managed_policies() -> dict[str, ManagedPolicy]:
    """The bundled AWS-managed policies keyed by ARN."""
    raw = json.loads(resources.files("auroral.iam").joinpath("managed_policies.json").read_text())
    out: dict[str, ManagedPolicy] = {}
    for name, d in raw["policies"].items():
        arn = f"{AWS_POLICY_PREFIX}{d['Path']}{name}"
        version = d["DefaultVersionId"]
        document = json.dumps(d["Document"], indent=4)
        created, updated = parse_ts(d["CreateDate"]), parse_ts(d["UpdateDate"])
        out[arn] = ManagedPolicy(
            name=name,
            path=d["Path"],
            policy_id=_stable_id(name),
            arn=arn,
            created=created,
            updated=updated,
            default_version=version,
            versions={version: PolicyVersion(version, document, updated)},
            description=d.get("Description"),
            aws_managed=True,
        )
    return out
