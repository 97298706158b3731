"""EC2's error codes and messages (all HTTP 400).

Wordings follow what EC2 returns, as quoted in public bug reports and SDK issues (for example
``resource sg-… has a dependent object``, ``resource igw-… is already attached to network vpc-…``,
``the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists``).
NotFound messages use EC2's ``The <type> ID '<id>' does not exist`` form.
"""

from __future__ import annotations

from auroral.errors import AwsError

# resource type -> (error code, type word used in the message)
_NOT_FOUND = {
    "vpc": ("InvalidVpcID.NotFound", "vpc"),
    "subnet": ("InvalidSubnetID.NotFound", "subnet"),
    "network-interface": ("InvalidNetworkInterfaceID.NotFound", "networkInterface"),
    "internet-gateway": ("InvalidInternetGatewayID.NotFound", "internetGateway"),
    "customer-gateway": ("InvalidCustomerGatewayID.NotFound", "customerGateway"),
    "vpn-gateway": ("InvalidVpnGatewayID.NotFound", "vpnGateway"),
    "vpn-connection": ("InvalidVpnConnectionID.NotFound", "vpnConnection"),
    "security-group-rule": ("InvalidSecurityGroupRuleId.NotFound", "security group rule"),
}


def not_found(kind: str, resource_id: str) -> AwsError:
    if kind == "security-group":
        return group_not_found(resource_id)
    code, word = _NOT_FOUND[kind]
    return AwsError(code, f"The {word} ID '{resource_id}' does not exist", 400)


def group_not_found(group: str) -> AwsError:
    return AwsError("InvalidGroup.NotFound", f"The security group '{group}' does not exist", 400)


def group_name_not_found(name: str, vpc_id: str) -> AwsError:
    return AwsError("InvalidGroup.NotFound",
                    f"The security group '{name}' does not exist in default VPC '{vpc_id}'", 400)


def eni_group_not_found(group_id: str) -> AwsError:
    return AwsError("InvalidSecurityGroupID.NotFound", f"The securityGroup ID '{group_id}' does not exist", 400)


def group_duplicate(name: str, vpc_id: str) -> AwsError:
    return AwsError("InvalidGroup.Duplicate", f"The security group '{name}' already exists for VPC '{vpc_id}'", 400)


def cannot_delete_default(group_id: str) -> AwsError:
    return AwsError("CannotDelete", f'the specified group: "{group_id}" name: "default" cannot be deleted by a user',
                    400)


def dependency(message: str) -> AwsError:
    return AwsError("DependencyViolation", message, 400)


def has_dependencies(word: str, resource_id: str) -> AwsError:
    return dependency(f"The {word} '{resource_id}' has dependencies and cannot be deleted.")


def permission_duplicate(description: str) -> AwsError:
    return AwsError("InvalidPermission.Duplicate", f'the specified rule "{description}" already exists', 400)


def permission_not_found() -> AwsError:
    return AwsError("InvalidPermission.NotFound", "The specified rule does not exist in this security group.", 400)


def missing(parameter: str) -> AwsError:
    return AwsError("MissingParameter", f"The request must contain the parameter {parameter}", 400)


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterValue", message, 400)


def invalid_value(parameter: str, value: object, why: str) -> AwsError:
    return invalid(f"Value ({value}) for parameter {parameter} is invalid. {why}")


def not_attached(gateway_id: str, vpc_id: str) -> AwsError:
    return AwsError("Gateway.NotAttached", f"resource {gateway_id} is not attached to network {vpc_id}", 400)


def already_attached(gateway_id: str, vpc_id: str) -> AwsError:
    return AwsError("Resource.AlreadyAssociated", f"resource {gateway_id} is already attached to network {vpc_id}",
                    400)


def vpc_range(cidr: str) -> AwsError:
    return AwsError("InvalidVpc.Range", f"The CIDR '{cidr}' is invalid.", 400)


def subnet_range(cidr: str) -> AwsError:
    return AwsError("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.", 400)


def subnet_conflict(cidr: str) -> AwsError:
    return AwsError("InvalidSubnet.Conflict", f"The CIDR '{cidr}' conflicts with another subnet", 400)
