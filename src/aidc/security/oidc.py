"""Single sign-on: OIDC bearer JWTs checked against the issuer's JWKS and mapped to an existing aidc principal.

A JWT is accepted when its signature verifies under a key of the issuer's JWKS (found by ``kid``; the JWKS
is cached and fetched again when a token names an unknown ``kid``, at most once per ``REFETCH_AFTER_S``),
its ``iss`` is the configured issuer, its ``aud`` holds the configured audience, and ``exp``/``nbf`` hold
with ``LEEWAY_S`` of clock skew. The claim ``oidc_principal_claim`` (default ``sub``) names the aidc user,
which must already exist: roles still come from aidc's RBAC, and nobody the issuer knows becomes an aidc
user without an admin creating them.
"""

from __future__ import annotations

import ssl
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aidc.errors import AidcError, BackendUnavailable, NotFound, Unauthenticated
from aidc.security.roles import Access

if TYPE_CHECKING:
    from aidc.security.service import Security
    from aidc.settings import Settings

LEEWAY_S = 60
REFETCH_AFTER_S = 30.0  # an unknown kid refetches the JWKS at most this often: junk tokens cannot flood the issuer
# Asymmetric algorithms only: a JWKS holds public keys, and an HMAC "verified" with one proves nothing.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_HINT = "sign in to the identity provider again for a fresh token, or use an aidc API token"


def looks_like_jwt(token: str) -> bool:
    """aidc tokens have no dots; a compact JWS has exactly two."""
    return token.count(".") == 2


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str = "",
        principal_claim: str = "sub",
        ca_file: str = "",
        timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.principal_claim = principal_claim
        self._jwks_url = jwks_url
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._timeout = timeout
        self._keys: Any = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    # -- the issuer's keys
    def _get_json(self, url: str) -> Any:
        import httpx

        try:
            response = httpx.get(url, timeout=self._timeout, verify=self._verify, follow_redirects=True)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendUnavailable(
                f"cannot fetch {url} from the OIDC issuer: {exc}",
                where=url,
                hint="check AIDC_OIDC_ISSUER / AIDC_OIDC_JWKS_URL and that the issuer is reachable from the server",
            ) from None

    def jwks_url(self) -> str:
        if not self._jwks_url:
            discovery = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            config = self._get_json(discovery)
            if not isinstance(config, dict) or config.get("issuer") != self.issuer or not config.get("jwks_uri"):
                raise BackendUnavailable(
                    f"{discovery} does not describe issuer {self.issuer!r} with a jwks_uri",
                    where=discovery,
                    hint="AIDC_OIDC_ISSUER must be exactly the issuer's `issuer`",
                )
            self._jwks_url = str(config["jwks_uri"])
        return self._jwks_url

    def _key_set(self, refresh: bool) -> Any:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        with self._lock:
            stale = refresh and time.monotonic() - self._fetched_at >= REFETCH_AFTER_S
            if self._keys is None or stale:
                url = self.jwks_url()
                try:
                    self._keys = KeySet.import_key_set(self._get_json(url))
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise BackendUnavailable(f"the issuer's JWKS at {url} cannot be read: {exc}", where=url) from None
                self._fetched_at = time.monotonic()
            return self._keys

    def _key_for(self, kid: str | None) -> Any:
        for refresh in (False, True):  # a kid we have not seen: the issuer may have rotated its keys
            keys = self._key_set(refresh)
            if kid is None and len(keys.keys) == 1:
                return keys.keys[0]
            match = next((k for k in keys.keys if k.kid == kid), None) if kid is not None else None
            if match is not None:
                return match
        raise Unauthenticated(
            f"OIDC token is signed with key id {kid!r}, which the issuer's JWKS ({self.jwks_url()}) does not hold",
            hint=_HINT,
        )

    # -- one token
    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; Unauthenticated saying what is wrong otherwise."""
        from joserfc import jwt
        from joserfc.errors import (
            BadSignatureError,
            ExpiredTokenError,
            InvalidClaimError,
            JoseError,
            MissingClaimError,
        )
        from joserfc.jws import extract_compact

        try:
            header = extract_compact(token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("malformed OIDC token", hint=_HINT) from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(
                f"OIDC token algorithm {header.get('alg')!r} is not accepted",
                hint=f"the issuer must sign with one of {', '.join(ALGORITHMS)}",
            )
        key = self._key_for(header.get("kid"))
        try:
            decoded = jwt.decode(token, key, algorithms=list(ALGORITHMS))
        except BadSignatureError:
            raise Unauthenticated("OIDC token signature does not verify", hint=_HINT) from None
        except (JoseError, ValueError, TypeError) as exc:
            raise Unauthenticated(f"malformed OIDC token: {exc}", hint=_HINT) from None
        claims: dict[str, Any] = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated(f"OIDC token expired at {_when(claims.get('exp'))}", hint=_HINT) from None
        except MissingClaimError as exc:
            raise Unauthenticated(f"OIDC token lacks the {exc.claim!r} claim", hint=_HINT) from None
        except InvalidClaimError as exc:
            name = exc.claim
            if name == "nbf" and isinstance(claims.get("nbf"), int | float):
                raise Unauthenticated(
                    f"OIDC token is not valid before {_when(claims.get('nbf'))}",
                    hint="check the clocks of this server and the issuer",
                ) from None
            expected = {"iss": f"issuer {self.issuer!r}", "aud": f"audience {self.audience!r}"}.get(name, name)
            raise Unauthenticated(
                f"OIDC token claim {name} = {claims.get(name)!r} does not match {expected}",
                hint="the token was issued for another issuer or application",
            ) from None
        return claims

    def authenticate(self, token: str, source: str, security: Security) -> Access:
        claims = self.claims(token)
        name = claims.get(self.principal_claim)
        if not isinstance(name, str) or not name:
            raise Unauthenticated(
                f"OIDC token has no {self.principal_claim!r} claim to name an aidc user",
                hint="set AIDC_OIDC_PRINCIPAL_CLAIM to a claim the issuer puts in its tokens",
            )
        try:
            principal = security.store.get_principal(name)
        except NotFound:
            raise Unauthenticated(
                f"OIDC user {name!r} is not an aidc user",
                hint=f"an admin creates it and grants a role: aidc users create {name} --role viewer --project PROJECT",
            ) from None
        if principal.disabled:
            raise Unauthenticated(f"{name} is disabled", hint="ask an admin to enable it (`aidc users enable`)")
        return Access(
            principal=principal.name,
            kind=principal.kind,
            token_id="oidc",
            source=source,
            bindings=frozenset((b.role, b.project) for b in principal.roles),
        )


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return repr(timestamp)


def verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier the settings configure, or None when OIDC is not configured. Keep it as long as the server runs:
    its JWKS cache lives in it."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise AidcError(
            "OIDC is configured without an audience",
            where="AIDC_OIDC_AUDIENCE",
            hint="set AIDC_OIDC_AUDIENCE to the client id tokens for aidc are issued to",
        )
    return OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        principal_claim=settings.oidc_principal_claim,
        ca_file=settings.ca_file,
    )
