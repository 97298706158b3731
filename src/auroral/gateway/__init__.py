"""The endpoint gateway: TCP listeners that decide at accept time and relay to private PostgreSQL sockets.

Modules: ``listener`` (:class:`Gateway`), ``session`` (one connection's life), ``pipe`` (the relaying
Protocol with backpressure), ``limits`` (the gateway-wide bounds, from the descriptor limit),
``startup`` (protocol framing), ``scram`` (upstream login), ``tls`` (CA and server certificates),
``flows`` (flow records), ``decision`` (the hooks' types).
"""

from auroral.gateway.decision import AuthPlan, ConnectionInfo, EndpointConfig, Verdict, allow_all
from auroral.gateway.flows import FlowLog, FlowRecord
from auroral.gateway.limits import GatewayLimits, raise_descriptor_limit
from auroral.gateway.listener import Gateway
from auroral.gateway.startup import StartupInfo
from auroral.gateway.tls import TlsMaterial

__all__ = [
    "AuthPlan", "ConnectionInfo", "EndpointConfig", "FlowLog", "FlowRecord", "Gateway", "GatewayLimits",
    "StartupInfo", "TlsMaterial", "Verdict", "allow_all", "raise_descriptor_limit",
]
