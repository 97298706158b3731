"""The authorization table's home for the ``secretsmanager`` service name; the implementation is in
``auroral.secrets``."""
