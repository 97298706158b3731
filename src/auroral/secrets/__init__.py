"""Secrets Manager: the API provider (``service``), the Vault other services use (``vault``) and the
rotation scheduler (``rotation``). Modules: model, records, envelope, schedule, vault, rotation, base,
lifecycle, values, policies, rotate_api, password, views, errors."""
