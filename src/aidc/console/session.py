"""The console's session: the token given once at the login form becomes a short-lived session token of its own in
an HttpOnly, SameSite=Strict cookie (Secure under TLS), and every form carries a CSRF token bound to that session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from aidc.errors import AidcError, PermissionDenied
from aidc.security.roles import Access
from aidc.services import Services
from aidc.services.callers import authenticate

COOKIE = "aidc_session"
SESSION_DAYS = 1  # a session token lives a day at most (less if the token that logged in expires sooner)


class Sessions:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._csrf_key = secrets.token_bytes(32)  # per process: a form from before a restart asks to be reloaded

    def login(self, token: str, source: str) -> tuple[Access, str]:
        """The caller ``token`` stands for, and a session token of theirs (same scopes, ≤ a day) for the cookie: the
        token typed in is never stored in the browser, and logging out revokes the session's own."""
        security = self.services.security
        try:
            access = authenticate(self.services, token.strip(), source)
        except AidcError as exc:  # counted and sampled like the API's refusals: a flood of guesses shows in the audit
            security.rejected(Access.anonymous(source), "POST /console/login", "/console/login", exc)
            raise
        try:
            made = security.create_token(
                access, name="console session", scopes=list(access.scopes), expires_days=SESSION_DAYS
            )
        except PermissionDenied:  # the token logging in expires within the day: the session ends with it
            made = security.create_token(access, name="console session", scopes=list(access.scopes))
        return access, str(made["token"])

    def caller(self, request: Request) -> Access | None:
        """Who the request's session cookie stands for; None without one, or once it expired or was revoked."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        source = request.client.host if request.client else "unknown"
        security = self.services.security
        try:
            known = security.recently_verified(token, source)
            return known if known is not None else authenticate(self.services, token, source)
        except AidcError:
            return None

    def logout(self, access: Access) -> None:
        """Revoke the session's token (audited as its owner's). The API refuses a token revoking itself, which would
        leave a request without a caller; logging out is exactly that, and the session ends here."""
        if access.token_id:
            self.services.security.revoke_token(replace(access, token_id=None), access.token_id, owner=access.principal)

    # -- the cookie
    @staticmethod
    def set_cookie(response: Response, token: str, request: Request) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_DAYS * 86400,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/console")

    # -- CSRF: an HMAC of the session's token, in a hidden field of every form
    def csrf(self, request: Request) -> str:
        token = request.cookies.get(COOKIE, "")
        return hmac.new(self._csrf_key, token.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, sent: str) -> None:
        if not sent or not hmac.compare_digest(sent, self.csrf(request)):
            raise PermissionDenied(
                "this form is not from your console session (missing or stale CSRF token)",
                hint="reload the page and submit it again",
            )
