"""Security: the verbs on identities, tokens, projects and the audit chain — each change audited, each token hashed."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aidc.errors import AidcError, Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited, Unauthenticated
from aidc.security import tokens
from aidc.security.audit import ChainReport, verify_chain
from aidc.security.audit_sink import AuditSink
from aidc.security.auth_cache import DEFAULT_TTL_S, VerifiedTokens
from aidc.security.base import DEFAULT_PROJECT, SecurityStore
from aidc.security.records import ApiToken, AuditEntry, Principal, Project
from aidc.security.rejections import RejectionSampler
from aidc.security.roles import ALL_PROJECTS, NAME_PATTERN, PRINCIPAL_KINDS, ROLES, SCOPES, Access
from aidc.security.throttle import Throttle

BOOTSTRAP_ADMIN = "admin"
JOB_TOKEN_PREFIX = "job:"  # the name of a job's credential: job:<job id> (reserved for the server)
JOB_TOKEN_SCOPES = ("jobs:read",)  # its routes check it is the job's own token, not a permission
JOB_TOKEN_TTL = timedelta(days=7)  # how long a job's credential lives unrenewed (revoked when the job's process ends)
JOB_TOKEN_RENEW = timedelta(days=1)  # a running job's credential with less than this left is renewed for JOB_TOKEN_TTL
REJECTIONS = Access(principal="system:rejections", kind="local", source="aidc server")
TOUCH_EVERY = timedelta(minutes=1)  # how stale a token's last_used_at may be: one write per token per minute
_BAD_TOKEN = "invalid, expired or revoked API token"
_BAD_TOKEN_HINT = "log in again with a valid token (`aidc login URL`); an admin makes one with `aidc tokens create`"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


def _text(value: Any) -> Any:
    """What a request put in a path or body, storable anywhere: PostgreSQL refuses NUL characters in text."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return value


class Security:
    def __init__(
        self,
        store: SecurityStore,
        *,
        token_ttl_days: int = 30,
        retention_days: int = 180,
        auth_cache_s: float = DEFAULT_TTL_S,
        audit_sink: str = "",
        audit_key: str = "",
    ) -> None:
        self.store = store
        # Every entry also to a JSON-lines file off the database, signed with audit_key (audit_sink.py).
        self.sink = AuditSink(audit_sink, audit_key.encode() or None) if audit_sink else None
        self.token_ttl_days = token_ttl_days
        self.retention_days = retention_days
        # Who a verified token stands for, for auth_cache_s seconds (see auth_cache.py): changes made here forget
        # it at once; changes made elsewhere too when the server follows the store's change feed, else within
        # that time.
        self.verified = VerifiedTokens(auth_cache_s)
        # HMAC → token id of the tokens argon2 has already verified in this process (~50 ms each); once the
        # cache above has lapsed, revocation, expiry and disabling are checked against the store again.
        self._verified: dict[bytes, str] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = threading.Lock()
        # Wrong secrets, per token id and per source address (see throttle.py): bounded, decaying refusals.
        self.throttle = Throttle()
        self.rejections = RejectionSampler()

    # -- who is calling
    def recently_verified(self, token: str, source: str) -> Access | None:
        """The caller a token stood for when last verified, if that was under auth_cache_s ago and nothing needs
        writing; no I/O, so the API can answer it on its event loop. None: call ``authenticate``."""
        known = self.verified.get(self.verified.key(token), source)
        if (
            known is None
            or _now() - self._touched.get(known.token_id or "", datetime.min.replace(tzinfo=UTC)) > TOUCH_EVERY
        ):
            return None
        return known

    def authenticate(self, token: str, source: str) -> Access:
        """The caller a token stands for; Unauthenticated, naming no part of the token, when it does not."""
        fingerprint = self.verified.key(token)
        known = self.verified.get(fingerprint, source)
        if known is not None:
            self._touch(known.token_id)
            return known
        seen = self.verified.seen()  # before the store is read: a change from here on drops what is kept
        token_id = tokens.token_id_of(token)
        proven = self._verified.get(fingerprint) == token_id
        if not proven:
            # A secret this process has verified before is never refused: whoever floods a token id or a
            # shared source address with wrong secrets cannot lock out a user already working.
            self._refuse_if_throttled(token_id, source)
        record = self.store.get_token(token_id)
        if record is None:  # no hash was computed: nothing to throttle (an unknown id costs one indexed read)
            raise Unauthenticated(_BAD_TOKEN, hint=_BAD_TOKEN_HINT)
        if not proven:
            if not tokens.token_matches(record.secret_hash, token):
                self.throttle.failed(("source", source))
                self.throttle.failed(("token", token_id))
                raise Unauthenticated(_BAD_TOKEN, hint=_BAD_TOKEN_HINT)
            with self._lock:
                if len(self._verified) >= 10_000:
                    self._verified.clear()
                self._verified[fingerprint] = token_id
        now = _now()
        expires = _aware(record.expires_at)
        if record.revoked_at is not None or (expires is not None and expires <= now):
            raise Unauthenticated(
                f"API token {token_id} is {'revoked' if record.revoked_at else 'expired'}", hint=_BAD_TOKEN_HINT
            )
        principal = self.store.get_principal(record.principal)
        if principal.disabled:
            raise Unauthenticated(
                f"{principal.name} is disabled", hint="ask an admin to enable it (`aidc users enable`)"
            )
        self._touch(token_id, now)
        access = Access(
            principal=principal.name,
            kind=principal.kind,
            scopes=tuple(record.scopes),
            token_id=token_id,
            bindings=frozenset((b.role, b.project) for b in principal.roles),
            source=source,
            expires_at=expires,
        )
        self.verified.put(fingerprint, access, expires, seen)
        return access

    def _refuse_if_throttled(self, token_id: str, source: str) -> None:
        wait = max(self.throttle.retry_after(("source", source)), self.throttle.retry_after(("token", token_id)))
        if wait > 0:
            raise RateLimited(
                f"too many wrong tokens from {source} or for token {token_id}; try again in {wait:.0f} s",
                retry_after_s=wait,
                hint="check the token you send; repeated wrong tokens are refused for up to a minute",
            )

    def _touch(self, token_id: str | None, now: datetime | None = None) -> None:
        """Record when a token was last used, at most once a minute (a write per request would cost more than
        the request)."""
        now = now or _now()
        if token_id and now - self._touched.get(token_id, datetime.min.replace(tzinfo=UTC)) > TOUCH_EVERY:
            self._touched[token_id] = now
            self.store.touch_token(token_id, now)

    # -- audit
    def record(
        self,
        access: Access,
        action: str,
        target: str,
        *,
        result: str = "ok",
        project: str | None = None,
        **details: Any,
    ) -> AuditEntry:
        """Append one audit entry. Callers pass ids and names, never secrets."""
        if access.token_id:
            details = {"token_id": access.token_id} | details
        entry = self.store.append_audit(
            at=_now(),
            actor=_text(access.principal),
            action=_text(action),
            target=_text(target)[:1000],
            project=_text(project)[:200] if project else None,
            source=_text(access.source),
            result=result,
            details=_text(details),
        )
        if self.sink is not None:
            self.sink.write(entry)
        return entry

    @contextmanager
    def audited(
        self, access: Access, action: str, target: str, *, project: str | None = None, **details: Any
    ) -> Iterator[dict[str, Any]]:
        """Audit the block as ``ok``, or as ``failed`` with the error's code; the block may add details."""
        try:
            yield details
        except AidcError as exc:
            self.record(access, action, target, result="failed", project=project, error=exc.code, **details)
            raise
        self.record(access, action, target, project=project, **details)

    def denied(self, access: Access, action: str, target: str, error: AidcError, *, project: str | None = None) -> None:
        self.record(
            access, action, target, result="denied", project=project, error=error.code, status=error.http_status
        )

    def rejected(self, access: Access, action: str, target: str, error: AidcError) -> None:
        """A request refused before its caller was authenticated: sampled, not one entry each (rejections.py)."""
        write, summary = self.rejections.admit(access.source, action)
        if summary is not None:
            self.record(REJECTIONS, "auth.rejected", "api", result="denied", **summary)
        if write:
            self.denied(access, action, target, error)

    def audit_list(self, **filters: Any) -> list[AuditEntry]:
        return self.store.audit_entries(**filters)

    def audit_verify(self) -> ChainReport:
        report = verify_chain(self.store.iter_audit())
        return self.sink.check(self.store.iter_audit(), report) if self.sink is not None else report

    def audit_export(self) -> Iterator[AuditEntry]:
        return self.store.iter_audit()

    def prune_audit(self, access: Access) -> AuditEntry | None:
        """Delete the entries older than the retention period, leaving the entry that accounts for them."""
        before = _now() - timedelta(days=self.retention_days)
        entry = self.store.prune_audit(before, actor=access.principal, source=access.source)
        if entry is not None and self.sink is not None:
            self.sink.write(entry)
        return entry

    # -- first start
    def bootstrap(self, access: Access, admin_token: str = "") -> str | None:
        """On an empty store, make user ``admin`` (admin on every project) with a token: ``admin_token`` when
        given, else a new one, returned to be shown once. Does nothing (returns None) once anyone exists."""
        if self.store.list_principals():
            return None
        if admin_token:
            tokens.check_foreign_token(admin_token)
        with self.audited(access, "security.bootstrap", f"principal:{BOOTSTRAP_ADMIN}"):
            self.store.create_principal(BOOTSTRAP_ADMIN, "user")
            self.store.grant(BOOTSTRAP_ADMIN, "admin", ALL_PROJECTS)
        if admin_token:
            self._add_token(access, BOOTSTRAP_ADMIN, "bootstrap", ["*"], None, token=admin_token)
            return None
        return self._add_token(access, BOOTSTRAP_ADMIN, "bootstrap", ["*"], None)[1]

    # -- tokens
    def _add_token(
        self,
        access: Access,
        principal: str,
        name: str,
        scopes: list[str],
        expires_days: int | None,
        *,
        token: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[ApiToken, str]:
        expires = expires_at or self._expiry(access, expires_days)
        for _ in range(5):  # a clash of 32-bit ids is rare; a new token resolves it
            token_id, secret = (tokens.token_id_of(token), token) if token else tokens.new_token()
            try:
                with self.audited(
                    access,
                    "token.create",
                    f"token:{token_id}",
                    principal=principal,
                    name=name,
                    scopes=scopes,
                    expires_at=expires.isoformat() if expires else None,
                ):
                    record = self.store.add_token(token_id, principal, name, tokens.hash_token(secret), scopes, expires)
                return record, secret
            except Conflict:
                if token:
                    raise
        raise Conflict("could not find a free token id", hint="try again")

    def _expiry(self, access: Access, expires_days: int | None) -> datetime | None:
        """When a token ``access`` makes expires: never later than the token that makes it."""
        days = self.token_ttl_days if expires_days is None else expires_days
        expires = _now() + timedelta(days=days) if days else None
        parent = _aware(access.expires_at)
        if parent is not None and (expires is None or expires > parent):
            if expires_days is not None:  # asked for outright: say no rather than hand out less than asked
                raise PermissionDenied(
                    "a token cannot outlive the token that creates it "
                    f"(this one expires {parent.isoformat(timespec='seconds')})",
                    hint="ask for fewer expires_days, or create it with a longer-lived token",
                )
            expires = parent  # the default lifetime, cut to the parent's
        return expires

    def create_token(
        self,
        access: Access,
        *,
        name: str,
        principal: str | None = None,
        scopes: list[str] | None = None,
        expires_days: int | None = None,
    ) -> dict[str, Any]:
        """A new token for ``principal`` (default: the caller): its record plus ``token``, the only time it is shown.

        Scopes narrow what the token may do below its owner's roles; a scoped token cannot mint a wider one.
        """
        owner = principal or access.principal
        if name.startswith(JOB_TOKEN_PREFIX):
            raise InvalidInput(
                f"token names starting {JOB_TOKEN_PREFIX!r} are the server's own (each job's credential)",
                where="name",
                hint="choose another name",
            )
        if access.kind == "local" and principal is None:
            raise InvalidInput(
                "whose token? this command runs on the store directly, as no user",
                hint="name the owner: aidc tokens create --user NAME (or `aidc login` first)",
            )
        scopes = scopes or ["*"]
        try:  # a refusal is on record too: who asked for what, and why not
            for scope in scopes:
                if scope not in SCOPES:
                    raise InvalidInput(f"unknown scope {scope!r}", hint=f"one of {', '.join(SCOPES)}")
                if not (access.in_scope(scope) if scope != "*" else "*" in access.scopes):
                    raise PermissionDenied(
                        f"this token's scopes do not cover {scope!r}",
                        hint="create the token with a token whose scopes are wider",
                    )
            if expires_days is not None and expires_days < 0:
                raise InvalidInput("expires_days must be 0 (never) or more")
            self._expiry(access, expires_days)
            if self.store.get_principal(owner).disabled:
                raise Conflict(f"{owner} is disabled", hint=f"enable it first: aidc users enable {owner}")
        except PermissionDenied as exc:
            self.denied(access, "token.create", f"principal:{owner}", exc)
            raise
        except AidcError as exc:
            self.record(access, "token.create", f"principal:{owner}", result="failed", error=exc.code, name=name)
            raise
        record, secret = self._add_token(access, owner, name, scopes, expires_days)
        return record.to_json() | {"token": secret}

    # -- the credential of one job's process
    def create_job_credential(
        self, access: Access, job_id: str, submitter: str, project: str, *, ttl: timedelta = JOB_TOKEN_TTL
    ) -> str:
        """A token for job ``job_id``'s process, owned by its submitter: named ``job:ID`` (a name no one else may
        give a token), with only ``JOB_TOKEN_SCOPES``, expiring after ``ttl`` at the latest (it is revoked when
        the job's process ends). Audited as ``token.create`` like any other token; returns the secret."""
        _, secret = self._add_token(
            access,
            submitter,
            f"{JOB_TOKEN_PREFIX}{job_id}",
            list(JOB_TOKEN_SCOPES),
            None,
            expires_at=_now() + ttl,
        )
        return secret

    def job_of_token(self, token_id: str | None) -> str | None:
        """The job whose credential token ``token_id`` is (None: not a job's credential)."""
        if token_id is None:
            return None
        record = self.store.get_token(token_id)
        if record is None or not record.name.startswith(JOB_TOKEN_PREFIX):
            return None
        return record.name.removeprefix(JOB_TOKEN_PREFIX)

    def revoke_job_credentials(self, access: Access, job_id: str | None = None) -> list[str]:
        """Revoke the live credentials of job ``job_id`` (None: of every job; the scheduler calls it for jobs
        whose process has ended). Returns the token ids revoked."""
        name = f"{JOB_TOKEN_PREFIX}{job_id}" if job_id else None
        revoked = []
        for record in self._live_job_tokens():
            if name is not None and record.name != name:
                continue
            self.revoke_token(access, record.id)
            revoked.append(record.id)
        return revoked

    def renew_job_credentials(
        self,
        access: Access,
        job_ids: Iterable[str],
        *,
        ttl: timedelta = JOB_TOKEN_TTL,
        within: timedelta = JOB_TOKEN_RENEW,
    ) -> list[str]:
        """Renew the credentials of the running jobs ``job_ids`` that expire within ``within``: each then expires
        ``ttl`` from now, so a job that runs longer than ``ttl`` (a training run of weeks) keeps reaching its
        stores. A credential revoked or already expired stays so. Audited as ``token.renew``; returns the token
        ids renewed."""
        names = {f"{JOB_TOKEN_PREFIX}{job_id}" for job_id in job_ids}
        now = _now()
        renewed = []
        for record in self._live_job_tokens():
            expires = _aware(record.expires_at)
            if record.name not in names or expires is None:
                continue
            if expires <= now or expires - now > within:
                continue
            with self.audited(
                access,
                "token.renew",
                f"token:{record.id}",
                principal=record.principal,
                name=record.name,
                expires_at=(now + ttl).isoformat(),
            ):
                self.store.extend_token(record.id, now + ttl)
            renewed.append(record.id)
        return renewed

    def live_job_credentials(self) -> dict[str, str]:
        """token id → job id, for every job credential not yet revoked."""
        return {r.id: r.name.removeprefix(JOB_TOKEN_PREFIX) for r in self._live_job_tokens()}

    def _live_job_tokens(self) -> list[ApiToken]:
        """The job credentials not yet revoked."""
        return [r for r in self.store.list_tokens(None) if r.revoked_at is None and r.name.startswith(JOB_TOKEN_PREFIX)]

    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        return self.store.list_tokens(principal)

    def revoke_token(self, access: Access, token_id: str, *, owner: str | None = None) -> ApiToken:
        """Revoke a token; with ``owner``, only if that principal owns it (NotFound otherwise, as for a stranger)."""
        record = self.store.get_token(token_id)
        if record is None or (owner is not None and record.principal != owner):
            raise NotFound(
                f"no token {token_id!r}" + (f" of {owner}" if owner else ""), hint="list tokens with `aidc tokens list`"
            )
        with self.audited(access, "token.revoke", f"token:{token_id}", principal=record.principal):
            if token_id == access.token_id:
                raise Conflict("that is the token this request is made with", hint="revoke it using another token")
            revoked = self.store.revoke_token(token_id, _now())
        self.verified.forget(token_id=token_id)
        return revoked

    # -- users and service accounts
    def create_principal(self, access: Access, name: str, kind: str = "user") -> Principal:
        if kind not in PRINCIPAL_KINDS:
            raise InvalidInput(f"unknown kind {kind!r}", hint=f"one of {', '.join(PRINCIPAL_KINDS)}")
        if not re.fullmatch(NAME_PATTERN, name) or name == "anonymous":
            raise InvalidInput(
                f"{name!r} cannot name a user",
                hint="1–200 letters, digits and . _ @ -, starting with a letter or digit",
            )
        with self.audited(access, "principal.create", f"principal:{name}", kind=kind):
            return self.store.create_principal(name, kind)

    def list_principals(self) -> list[Principal]:
        return self.store.list_principals()

    def _check_project(self, project: str) -> None:
        if project != ALL_PROJECTS and project not in {p.name for p in self.store.list_projects()}:
            raise NotFound(f"no project {project!r}", hint="list projects with `aidc projects list`")

    def _keeps_an_admin(
        self, access: Access, name: str, *, dropping: tuple[str, str] | None = None, disabling: bool = False
    ) -> None:
        """Refuse the change that would leave no enabled admin on every project — nobody could undo it — and
        an admin locking themselves out: that is for another admin to do."""
        if name == access.principal and (disabling or (dropping and dropping[0] == "admin")):
            raise Conflict(f"{name} cannot disable or demote themselves", hint="ask another admin")
        admins = [
            p
            for p in self.store.list_principals()
            if not p.disabled and any(b.role == "admin" and b.project == ALL_PROJECTS for b in p.roles)
        ]
        if [p.name for p in admins] == [name] and (disabling or dropping == ("admin", ALL_PROJECTS)):
            raise Conflict(f"{name} is the last admin", hint="grant admin on * to someone else first")

    def grant(self, access: Access, name: str, role: str, project: str) -> Principal:
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}", hint=f"one of {', '.join(ROLES)}")
        self._check_project(project)
        with self.audited(access, "role.grant", f"principal:{name}", project=project, role=role):
            granted = self.store.grant(name, role, project)
        self.verified.forget(principal=name)
        return granted

    def revoke_role(self, access: Access, name: str, role: str, project: str) -> Principal:
        with self.audited(access, "role.revoke", f"principal:{name}", project=project, role=role):
            self._keeps_an_admin(access, name, dropping=(role, project))
            revoked = self.store.revoke(name, role, project)
        self.verified.forget(principal=name)
        return revoked

    def set_disabled(self, access: Access, name: str, disabled: bool) -> Principal:
        with self.audited(access, "principal.disable" if disabled else "principal.enable", f"principal:{name}"):
            if disabled:
                self._keeps_an_admin(access, name, disabling=True)
            changed = self.store.set_disabled(name, disabled)
        self.verified.forget(principal=name)
        return changed

    # -- projects
    def create_project(self, access: Access, name: str, description: str = "") -> Project:
        if not re.fullmatch(NAME_PATTERN, name):
            raise InvalidInput(
                f"{name!r} cannot name a project",
                hint="1–200 letters, digits and . _ @ -, starting with a letter or digit",
            )
        with self.audited(access, "project.create", f"project:{name}", project=name):
            return self.store.create_project(name, description)

    def list_projects(self, access: Access) -> list[Project]:
        """The projects the caller has a role on (all of them for a role on *)."""
        mine = {project for _, project in access.bindings}
        return [p for p in self.store.list_projects() if ALL_PROJECTS in mine or p.name in mine]

    def assign_project(self, access: Access, kind: str, id_: str, project: str) -> dict[str, str]:
        with self.audited(access, "project.assign", f"{kind}:{id_}", project=project) as details:
            details["from"] = self.store.assign_project(kind, id_, project)
        return {"kind": kind, "id": id_, "project": project, "from": details["from"]}

    def project_of(self, kind: str, id_: str) -> str:
        return self.store.projects_of(kind, [id_]).get(str(id_), DEFAULT_PROJECT)
