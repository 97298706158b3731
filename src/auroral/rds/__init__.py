"""Amazon RDS for Aurora PostgreSQL: the API (``RdsService``) over a ``ClusterRuntime``.

See ``service.py`` for how the operation families compose and ``runtime.py`` for the seam to
the engine and the gateway.
"""
