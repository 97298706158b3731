"""The generic AWS wire-protocol layer (query, ec2, json), driven by botocore's service models.

    detect_service(req)                       -> "rds" | "kms" | ... | None
    unserved_service(req)                     -> "organizations" | ... | None (signed for, not served)
    parse_request(service, req)               -> (OperationModel, input dict as a boto3 user wrote it)
    serialize_response(service, op, out, id)  -> HttpResponse
    serialize_error(service, AwsError, id)    -> HttpResponse
    error_from_shape(service, shape, message) -> AwsError with the modelled wire code and status

No module here knows a service's operations: names, shapes, constraints and error codes all come from
the models. Modules: ``http`` (request/response), ``models`` (compiled shapes), ``query`` (query+ec2),
``json_``, ``validate``, ``errors`` (error documents), ``codec`` (entry points), ``detect``.
"""

from .codec import parse_request, serialize_response
from .detect import Wire, detect_service, unserved_service
from .errors import serialize_error
from .http import HttpRequest, HttpResponse, header
from .models import error_from_shape, service_model

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "Wire",
    "detect_service",
    "error_from_shape",
    "header",
    "parse_request",
    "serialize_error",
    "serialize_response",
    "service_model",
    "unserved_service",
]
