"""The REST API's shared plumbing, used by every app's `apis.py`.

- `viewsets`: the base viewsets that resolve the tenant once and check scopes;
- `scopes`: `Scope` and the role a signed-in member needs for each scope; `permissions`:
  `HasScope`, which checks them;
- `auth`: who a request comes from (`ApiKeyPrincipal`, `acting_user`); the keys themselves and
  `ApiKeyAuthentication` live with the rest of API-key management in `apps.integrations`;
- `pagination`, `throttling`: the DRF defaults named in settings; `filters`: shared filters;
- `errors`: the one error body and DRF's exception handler.
"""
