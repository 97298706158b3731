"""Authorization table entries for Security Hub (Service Authorization Reference, "AWS Security Hub").

Every operation auroral serves acts on the account's hub, ``arn:aws:securityhub:<region>:<account>:hub/default``
(Unconfirmed for the read-only catalogue operations, which the reference lists with the hub resource too).
"""

from auroral.api.actions import ActionSpec

_HUB = "arn:{partition}:securityhub:{region}:{account}:hub/default"

ACTIONS: dict[str, ActionSpec] = {
    "GetFindings": ActionSpec("securityhub:GetFindings", (_HUB,), read_only=True),
    "BatchUpdateFindings": ActionSpec("securityhub:BatchUpdateFindings", (_HUB,)),
    "DescribeStandards": ActionSpec("securityhub:DescribeStandards", (_HUB,), read_only=True),
    "GetEnabledStandards": ActionSpec("securityhub:GetEnabledStandards", (_HUB,), read_only=True),
    "DescribeStandardsControls": ActionSpec("securityhub:DescribeStandardsControls", (_HUB,), read_only=True),
    "ListSecurityControlDefinitions": ActionSpec("securityhub:ListSecurityControlDefinitions", (_HUB,),
                                                 read_only=True),
    "GetSecurityControlDefinition": ActionSpec("securityhub:GetSecurityControlDefinition", (_HUB,),
                                               read_only=True),
}
