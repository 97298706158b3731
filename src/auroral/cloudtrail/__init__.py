"""CloudTrail: LookupEvents over auroral's audit trail."""
