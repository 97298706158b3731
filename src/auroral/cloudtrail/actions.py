"""Authorization table entries for CloudTrail (Service Authorization Reference: LookupEvents has no resource)."""

from auroral.api.actions import ActionSpec

ACTIONS: dict[str, ActionSpec] = {
    "LookupEvents": ActionSpec("cloudtrail:LookupEvents", ("*",), read_only=True),
}
