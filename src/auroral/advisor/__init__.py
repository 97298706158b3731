"""The security advisor: Security Hub controls evaluated live over auroral's own resources.

``controls`` (the catalogue: AWS's IDs, titles, severities), ``checks`` (pure checks over a
``Snapshot``), ``engine`` (the findings, kept current as resources change). Served by
``auroral.securityhub``; shown by ``auroral findings``.
"""
