"""EC2: VPCs, subnets, security groups, network interfaces, internet gateways and Site-to-Site VPN,
and the ``Network`` view that decides, per connection, what a VPC would let through."""

from auroral.ec2.network import Decision, Network
from auroral.ec2.service import Ec2Service

__all__ = ["Decision", "Ec2Service", "Network"]
