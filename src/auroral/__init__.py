"""auroral: a self-hosted, AWS-API-compatible Aurora PostgreSQL service on real PostgreSQL."""

__version__ = "0.1.0"
