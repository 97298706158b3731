"""Engine exceptions. They are internal: the RDS layer maps them to AWS errors.

    EngineError
     ├── NoInstallationError     no PostgreSQL binaries for the requested major
     ├── ServerNotFoundError     no server with that cluster id
     ├── ServerExistsError       create_server for an id that already has a server
     ├── ServerStateError        the operation needs another status (e.g. run_admin_sql while stopped)
     ├── ServerStartError        the postmaster exited or did not become ready; carries the log tail
     └── ParameterError          a parameter name or value PostgreSQL rejects
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every engine error."""


class NoInstallationError(EngineError):
    pass


class ServerNotFoundError(EngineError):
    pass


class ServerExistsError(EngineError):
    pass


class ServerStateError(EngineError):
    pass


class ServerStartError(EngineError):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}".rstrip())
        self.log_tail = log_tail


class ParameterError(EngineError):
    pass
