"""One management request, end to end, as a short list of named steps:

    detect service → authenticate (SigV4) → parse (botocore model) → authorize (actions table)
    → dispatch (provider method) → serialize (same model) → audit

Every step raises ``AwsError``; ``handle`` renders it in the service's protocol and still
records the call on the audit trail. Anything else a handler raises becomes a logged
``InternalFailure`` (500) with no traceback on the wire. After a call that may have changed something
(any operation not read-only, failed ones included: a failure may come after a change), the
``after_change`` hook runs before the response is returned (the endpoints' network filters follow the
change before the caller can connect).
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from auroral.api import protocol, sigv4
from auroral.api.actions import ActionSpec, request_tag_keys, table
from auroral.api.context import Authorizer, Principal, RequestContext
from auroral.audit import AuditTrail
from auroral.audit.trail import hide_sensitive
from auroral.errors import AwsError
from auroral.regions import REGIONAL_SERVICES, check_region, iam_region

log = logging.getLogger(__name__)

_READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Lookup", "Simulate", "BatchGet", "Validate")

CredentialLookup = Callable[[str], "tuple[sigv4.SigningKeyInfo, Principal] | None"]
# (service, operation) after a call that may have changed something, before its response is returned
AfterChange = Callable[[str, str], Awaitable[None]]
# (service, region) -> that region's provider of a regional service
RegionalProviders = Callable[[str, str], Awaitable["Provider"]]


class Provider(Protocol):
    """A service implementation: one method per operation, ``(ctx, params) -> output dict``
    (or an awaitable of it). Optional hooks: ``resource_tags(account, arn)``,
    ``authz_keys(ctx, operation, params)`` for condition keys that need a lookup, and
    ``resource_arns(ctx, operation, params)`` for ARNs a template cannot know, and
    ``resolve_resource(ctx, kind, value, params)`` for the ``Ref`` resources of its table entries."""

    service: str


@dataclass(frozen=True)
class Peer:
    source_ip: str
    user_agent: str
    secure: bool


class Pipeline:
    def __init__(
        self,
        *,
        global_providers: Mapping[str, Provider],
        regional_providers: RegionalProviders,
        lookup: CredentialLookup,
        authorizer: Authorizer,
        audit: AuditTrail,
        note_key_used: Callable[[str, str, str, dt.datetime], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        after_change: AfterChange | None = None,
    ) -> None:
        self.global_providers = dict(global_providers)
        self._regional = regional_providers
        self._lookup = lookup
        self._authorizer = authorizer
        self._audit = audit
        self._note_key_used = note_key_used
        self._clock = clock
        self._table = table()
        self._after_change = after_change

    async def handle(self, req: protocol.HttpRequest, peer: Peer) -> protocol.HttpResponse:
        response, service, operation, spec = await self._handle(req, peer)
        if self._after_change is not None and spec is not None and not spec.read_only \
                and not operation.startswith(_READ_ONLY_PREFIXES):
            try:
                await self._after_change(service, operation)
            except Exception:
                log.exception("after %s.%s: the change hook failed", service, operation)
        return response

    async def _handle(self, req: protocol.HttpRequest,
                      peer: Peer) -> tuple[protocol.HttpResponse, str, str, ActionSpec | None]:
        request_id = str(uuid.uuid4())
        service = protocol.detect_service(req) or "sts"
        # An unserved or undetectable service still gets a well-formed (query-protocol) error; once
        # authenticated, in its own protocol where botocore models one auroral renders (below).
        service_for_errors = service if self._serves(service) else "sts"
        principal: Principal | None = None
        access_key: str | None = None
        operation = "Unknown"
        params: dict[str, Any] | None = None
        ctx: RequestContext | None = None
        spec: ActionSpec | None = None
        authorized: list[str] | None = None
        wire: protocol.Wire | None = None  # an unserved service's error form (its model is not kept)
        try:
            now = self._clock()
            principal, access_key, region = self._authenticate(req, now)
            wire = protocol.unserved_service(req)  # signed for Organizations, Account... (Prowler asks)
            if wire is not None:
                service = service_for_errors = wire.name
            if not self._serves(service):
                raise AwsError("InvalidAction", f"auroral does not serve the {service} API.", 400)
            op_model, params = protocol.parse_request(service, req)
            operation = op_model.name
            # A regional service is served by the region the request is signed for; IAM and STS are
            # global (their ARNs carry no region), whichever real region signed.
            provider = self.global_providers.get(service) or await self._regional(service, region)
            handler = getattr(provider, operation, None)
            spec = self._table.get((service, operation))
            if handler is None or spec is None:
                raise AwsError("InvalidAction", f"The action {operation} is not valid for this web service.", 400)
            ctx = RequestContext(
                request_id=request_id,
                service=service,
                operation=operation,
                # IAM's one endpoint is in its partition's first region (aws:RequestedRegion us-east-1)
                region=iam_region(region) if service == "iam" else region,
                principal=principal,
                source_ip=peer.source_ip,
                user_agent=peer.user_agent,
                secure_transport=peer.secure,
                time=now,
                params=params,
                authorizer=self._authorizer,
            )
            if not spec.unauthorized:
                authorized = self._resources(ctx, provider, spec, params)
                self._authorize(ctx, provider, spec, params, authorized)
            result = handler(ctx, params)
            if inspect.isawaitable(result):
                result = await result
            response = protocol.serialize_response(service, op_model, result or {}, request_id)
            self._record(ctx, service, operation, principal, access_key, peer, params, spec, authorized, None, None)
            return response, service, operation, spec
        except AwsError as err:
            self._record(ctx, service, operation, principal, access_key, peer, params, spec, authorized, err.code,
                         err.message)
            return protocol.serialize_error(service_for_errors, err, request_id, wire=wire), service, operation, spec
        except Exception:
            log.exception("internal error in %s.%s (request %s)", service, operation, request_id)
            failure = AwsError("InternalFailure", "The request processing has failed because of an unknown error.",
                               500, sender_fault=False)
            self._record(ctx, service, operation, principal, access_key, peer, params, spec, authorized,
                         failure.code, failure.message)
            return protocol.serialize_error(service_for_errors, failure, request_id, wire=wire), service, operation, spec

    # --- steps ---------------------------------------------------------------------------

    def _authenticate(self, req: protocol.HttpRequest, now: dt.datetime) -> tuple[Principal, str, str]:
        found: dict[str, Principal] = {}

        def lookup(key_id: str) -> sigv4.SigningKeyInfo | None:
            hit = self._lookup(key_id)
            if hit is None:
                return None
            found[key_id] = hit[1]
            return hit[0]

        verified = sigv4.verify(req.method, req.path, req.query, req.headers, req.body, lookup, now)
        principal = found[verified.access_key_id]
        check_region(verified.region)
        if self._note_key_used is not None:
            self._note_key_used(verified.access_key_id, verified.service, verified.region, now)
        return principal, verified.access_key_id, verified.region

    def _serves(self, service: str) -> bool:
        return service in self.global_providers or service in REGIONAL_SERVICES

    @staticmethod
    def _resources(ctx: RequestContext, provider: Provider, spec: ActionSpec, params: dict[str, Any]) -> list[str]:
        """The canonical ARNs the operation acts on: the provider's ``resource_arns`` if it answers
        (an IAM user's path, say), else the table entry's templates and resolved ``Ref``s."""
        exact = getattr(provider, "resource_arns", None)
        found = exact(ctx, ctx.operation, params) if exact is not None else None
        return list(found) if found is not None else spec.resolve(ctx, provider, params)

    def _authorize(self, ctx: RequestContext, provider: Provider, spec: ActionSpec, params: dict[str, Any],
                   resources: list[str]) -> None:
        keys: dict[str, Any] = {}
        for key, param in spec.keys.items():
            value = params.get(param)
            if value is not None:
                keys[key] = value
        if spec.request_tags or spec.tag_keys:
            keys.update(request_tag_keys(spec, params))
        extra = getattr(provider, "authz_keys", None)
        extra_keys = extra(ctx, ctx.operation, params) if extra is not None else {}
        tags_of = getattr(provider, "resource_tags", None) if spec.resource_tags else None

        def keys_for(resource: str | None) -> dict[str, Any]:
            own = _resource_tags(tags_of, ctx, resource) if tags_of is not None and resource else {}
            return {**keys, **own, **extra_keys}

        if tags_of is not None and len(resources) > 1:
            # Each resource is decided with its own aws:ResourceTag/* (a tag-based Deny on one of them
            # must not be hidden behind an untagged other: CreateTags on [dev, prod], CreateSubnet in a
            # tagged VPC).
            for resource in resources:
                self._authorize_one(ctx, spec, [resource], keys_for(resource))
        else:
            self._authorize_one(ctx, spec, resources, keys_for(resources[0] if resources else None))
        if spec.tag_on_create is not None and _carries_tags(params.get(spec.tag_on_create[1])):
            # Tags on create need the tagging action too, on the new resource (RDS, EC2, Secrets Manager,
            # KMS, IAM API references), so a Deny on tagging is not sidestepped by tagging at creation.
            new = resources[:1] or ["*"]
            tag_keys = keys_for(new[0])
            if ctx.service == "ec2":
                tag_keys["ec2:CreateAction"] = ctx.operation
            ctx.authorize(spec.tag_on_create[0], new, tag_keys)

    def _authorize_one(self, ctx: RequestContext, spec: ActionSpec, resources: list[str],
                       keys: dict[str, Any]) -> None:
        if spec.deny_only:
            self._authorizer.authorize_unless_denied(ctx, spec.action, resources, keys)
        else:
            ctx.authorize(spec.action, resources, keys)

    def _record(
        self,
        ctx: RequestContext | None,
        service: str,
        operation: str,
        principal: Principal | None,
        access_key: str | None,
        peer: Peer,
        params: dict[str, Any] | None,
        spec: ActionSpec | None,
        authorized: list[str] | None,
        error_code: str | None,
        error_message: str | None,
    ) -> None:
        resources = list(ctx.resources) if ctx else []
        if not resources and ctx is not None and spec is not None:
            # The canonical ARNs authorized (never the request's spelling); before authorization, the templates.
            arns = authorized if authorized is not None else spec.render(ctx.params, ctx.account, ctx.region)
            resources = [
                {"ResourceType": spec.action.split(":")[0].upper(), "ResourceName": arn}
                for arn in arns
                if "*" not in arn
            ]
        try:
            if params is not None and operation != "Unknown":
                # members the model marks sensitive are hidden whatever their name
                params = hide_sensitive(protocol.service_model(service).operation_model(operation).input_shape,
                                        params)
            self._audit.record(
                request_id=ctx.request_id if ctx else str(uuid.uuid4()),
                service=service,
                operation=operation,
                principal=principal,
                access_key=access_key,
                source_ip=peer.source_ip,
                user_agent=peer.user_agent,
                params=params,
                read_only=(spec is not None and spec.read_only) or operation.startswith(_READ_ONLY_PREFIXES),
                resources=resources,
                error_code=error_code,
                error_message=error_message,
                response_elements=ctx.response_elements if ctx else None,
                region=ctx.region if ctx else None,
            )
        except Exception:  # the audit trail must never turn a served request into a failure
            log.exception("could not record audit event for %s.%s", service, operation)


def _resource_tags(tags_of: Callable[[str, str], Mapping[str, str] | None], ctx: RequestContext,
                   resource: str) -> dict[str, str]:
    """``aws:ResourceTag/*`` of one resource (none for ``*`` or a resource being created); for EC2 also its
    own ``ec2:ResourceTag/*``, which EC2 policies use alike."""
    if resource == "*":
        return {}
    tags = tags_of(ctx.account, resource) or {}
    out = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    if ctx.service == "ec2":
        out.update({f"ec2:ResourceTag/{k}": v for k, v in tags.items()})
    return out


def _carries_tags(value: Any) -> bool:
    """Whether a request's tag parameter holds any tag (a list of tags, a map, or EC2's TagSpecifications)."""
    if isinstance(value, Mapping):
        return bool(value)
    if isinstance(value, list):
        return any(bool(item["Tags"]) if isinstance(item, Mapping) and "Tags" in item else True for item in value)
    return False
