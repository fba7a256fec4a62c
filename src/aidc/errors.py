"""The AidcError tree: every failure a user can cause or meet, with its HTTP status and CLI exit code."""

from __future__ import annotations


class AidcError(Exception):
    """Base of every error aidc raises on purpose.

    ``code`` is a stable machine-readable name; ``http_status`` and ``exit_code`` are how the API and
    the CLI translate it (and only they do). ``hint`` says how to fix it, in one sentence.
    """

    code = "aidc_error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "where": self.where, "hint": self.hint}

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (a stage failing on a Ray worker); keyword-only constructor
        # arguments would not survive the default Exception pickling, so rebuild from the state instead.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(cls: type[AidcError], args: tuple[object, ...], state: dict[str, object]) -> AidcError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidSpec(AidcError):
    """A spec file (pipeline, facility, workload) is malformed or fails validation."""

    code = "invalid_spec"
    http_status = 422
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        where: str | None = None,
        problems: list[SpecProblem] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, where=where)
        self.problems = problems or []

    @classmethod
    def from_problems(cls, problems: list[SpecProblem]) -> InvalidSpec:
        """The error for located problems: the first one's place, field and message as the message (what a job's
        last error and the API's error body show), its hint as the hint, each said once."""
        first = problems[0]
        return cls(first.statement, hint=first.hint, problems=problems)

    def __str__(self) -> str:
        if len(self.problems) <= 1:
            return super().__str__()
        return "\n".join([f"{len(self.problems)} problems:"] + [f"  {p}" for p in self.problems])


class SpecProblem:
    """One validation problem located in a spec file: file:line:col, field path, what and how to fix."""

    def __init__(
        self, file: str, line: int | None, col: int | None, field: str, message: str, hint: str | None = None
    ) -> None:
        self.file, self.line, self.col, self.field, self.message, self.hint = file, line, col, field, message, hint

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def statement(self) -> str:
        """Where and what, without the hint: ``file:line:col: field: message``."""
        field = f" {self.field}:" if self.field else ""
        return f"{self.location}:{field} {self.message}"

    def __str__(self) -> str:
        return f"{self.statement} (hint: {self.hint})" if self.hint else self.statement

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
        }


class InvalidInput(AidcError):
    """A request or argument is wrong (not a spec file)."""

    code = "invalid_input"
    http_status = 400
    exit_code = 2


class NotFound(AidcError):
    code = "not_found"
    http_status = 404
    exit_code = 2


class Conflict(AidcError):
    code = "conflict"
    http_status = 409
    exit_code = 1


class PermissionDenied(AidcError):
    code = "permission_denied"
    http_status = 403
    exit_code = 1


class Unauthenticated(PermissionDenied):
    """No credentials, or ones that are invalid, expired or revoked (HTTP 401, unlike 403's "not allowed")."""

    code = "unauthenticated"
    http_status = 401


class RateLimited(AidcError):
    """Too many failed attempts from one source or at one token: refused for a while without being checked."""

    code = "rate_limited"
    http_status = 429
    exit_code = 1

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class BodyTooLarge(AidcError):
    """A request body over the server's limit (AIDC_MAX_BODY_MB)."""

    code = "body_too_large"
    http_status = 413
    exit_code = 2


class BackendUnavailable(AidcError):
    """A backend (metadata store, artifact store, Ray, a server) cannot be reached."""

    code = "backend_unavailable"
    http_status = 503
    exit_code = 1


class ServerUnreachable(BackendUnavailable):
    """The aidc server a job's process keeps its records through cannot be reached (stopped, restarting): the job
    leaves its outcome to the server, which re-queues it when it finds the process gone."""


class IntegrityError(AidcError):
    """Stored bytes do not match their content address: corrupted or tampered with."""

    code = "integrity_error"
    http_status = 500
    exit_code = 1


class MasterKeyUnavailable(AidcError):
    """Encrypted artifacts need a master key that is not configured here (missing, wrong, or unsafe key file)."""

    code = "master_key_unavailable"
    http_status = 500
    exit_code = 1


class StageFailed(AidcError):
    """A pipeline stage failed; the run is marked failed with the stage, the cause and where to look."""

    code = "stage_failed"
    http_status = 500
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        run_id: str,
        cause: str,
        log_path: str | None = None,
        hint: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, where=where)
        self.stage, self.run_id, self.cause, self.log_path = stage, run_id, cause, log_path

    def to_dict(self) -> dict[str, str | None]:
        return super().to_dict() | {
            "stage": self.stage,
            "run_id": self.run_id,
            "cause": self.cause,
            "log_path": self.log_path,
        }


class UserCodeError(StageFailed):
    """The failure came from the user's side — their code, their data, their spec's values — not from aidc.

    ``where`` points at their file and line (the frame of their code that raised, or the stage in their spec)."""

    code = "user_code_error"
    http_status = 422
    exit_code = 2


class PlatformFault(StageFailed):
    """A stage failed inside aidc itself: a fault of ours, which the hint says how to report."""

    code = "platform_fault"


class GateFailed(StageFailed):
    """A promotion gate in the spec (for example ``min_accuracy``) was not met."""

    code = "gate_failed"
