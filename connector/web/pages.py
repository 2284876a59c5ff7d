"""The API keys page at ``/generate/api-keys`` (the path TemplateTo's app uses), and signing in.

Server-rendered; the page's script only submits its forms in the background and copies values.
A new key's full value exists only in the answer to the create or roll that made it: it is never
stored, never put in the session and never redirected through, so leaving or reloading the page
hides it for good."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf, validate_csrf
from pydantic import BaseModel, ValidationError
from wtforms import ValidationError as CsrfRefused

from ..accounts import Role, UserInfo
from ..api_keys import ApiKeyInfo, IssuedApiKey, KeyName, Permission
from ..audit import Actor, Via
from ..clock import format_time
from ..errors import (
    AdminRequired,
    BridgeError,
    CsrfInvalid,
    InvalidCursor,
    InvalidGrace,
    InvalidKeyForm,
    InvalidPolicyForm,
    InvalidSignInForm,
    SignedOut,
    TooManyRequests,
)
from ..key_policy import MAX_AGE_DAYS_LIMIT, KeyPolicyChange, OnLeak
from ..paging import PageQuery
from ..services import services

blueprint = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/web",
)
KEYS_PAGE = "/generate/api-keys"
GRACE_CHOICES = {
    "0": ("Immediately", timedelta(0)),
    "3600": ("In 1 hour", timedelta(hours=1)),
    "86400": ("In 24 hours", timedelta(hours=24)),
    "604800": ("In 7 days", timedelta(days=7)),
}
# How long the banner still tells of a leak once the key has been rolled since.
LEAK_SHOWN_AFTER_ROLL = timedelta(days=7)
CLIENT_NAMES = {"zapier": "Zapier", "n8n": "n8n", "other": "Other"}
ON_LEAK_CHOICES = {
    OnLeak.NOTIFY: "Tell: mark the key leaked and send api_key.leaked",
    OnLeak.ROLL: "Also roll the key at once, with no grace period",
}
AUDIT_ENTRIES_SHOWN = 50
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_View = TypeVar("_View", bound=Callable[..., Any])


class NewKeyForm(BaseModel):
    name: KeyName
    permission: Permission = Permission.STANDARD


# --- signing in ------------------------------------------------------------------------------


def _signed_in_user() -> UserInfo | None:
    user_id = session.get("user_id")
    user = services().accounts.user(user_id) if isinstance(user_id, str) else None
    if user is None or session.get("generation") != user.session_generation:
        return None  # signed out since, here or elsewhere
    return user


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def signed_in(view: _View) -> _View:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = _signed_in_user()
        if user is None:
            if _wants_json():
                return _json_error(
                    SignedOut("You are signed out. Sign in again, then repeat what you did.")
                )
            return redirect(url_for("web.sign_in_form", next=request.path))
        return view(user, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _page_actor(email: str) -> Actor:
    """Who the audit log says acted through this page: the user, by email."""
    return Actor(email, Via.PAGE, request.remote_addr, request.headers.get("User-Agent"))


def _require_admin(user: UserInfo) -> None:
    if user.role is not Role.ADMIN:
        raise AdminRequired(
            "Only admins can create, roll or delete API keys. Ask an admin of your account.",
        )


@blueprint.before_request
def _refuse_forged_posts() -> None:
    """Every state-changing request carries the page's CSRF token (form field or header)."""
    if request.method != "POST":
        return
    token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    try:
        validate_csrf(token)
    except CsrfRefused:
        raise CsrfInvalid(
            "This form has expired or did not come from this page. Reload the page and try again.",
        ) from None


@blueprint.after_request
def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "web.static":
        # Pages may show a key's value, or who uses which key: never keep them in any cache.
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "csrf_token": generate_csrf,
        "format_time": _format_optional_time,
        "format_age": _format_age,
    }


@blueprint.app_template_filter("host")
def _host(url: str) -> str:
    """Where a subscription sends to, without its path (which may hold a secret token)."""
    return urlsplit(url).hostname or url


def _format_optional_time(moment: datetime | None, empty: str = "Never") -> str:
    return format_time(moment) if moment is not None else empty


def _format_age(since: datetime) -> str:
    """How old a key's current value is, in whole days: "today", "1 day", "16 days"."""
    days = (services().clock.now() - since).days
    return "today" if days < 1 else f"{days} day" if days == 1 else f"{days} days"


def _local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if target and target.startswith("/") and not target.startswith("//") and target.isprintable():
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return KEYS_PAGE


@blueprint.get("/signin")
def sign_in_form() -> Any:
    if _signed_in_user() is not None:
        return redirect(KEYS_PAGE)
    return render_template(
        "signin.html", next=_local_path(request.args.get("next")), signed_out="out" in request.args
    )


@blueprint.post("/signin")
def sign_in() -> Any:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    requested = request.form.get("next", "")
    if not requested.isprintable():
        # The form never sends one (it holds a safe path): refused before signing anyone in.
        raise InvalidSignInForm(
            "This sign-in form's return address holds line breaks or other control characters. "
            "Open the sign-in page again and sign in from there."
        )
    target = _local_path(requested)
    limits = services().sign_in_limits
    address = request.remote_addr or "unknown"
    try:
        limits.check(email, address)
    except TooManyRequests as limited:
        response = Response(
            render_template("signin.html", next=target, email=email, error=limited.message),
            status=429,
        )
        response.headers["Retry-After"] = str(limited.retry_after)
        return response
    user = (
        services().accounts.sign_in(email, password, actor=_page_actor(email))
        if email and password
        else None
    )
    if user is None:
        limits.failed(email, address)
        error = "The email or password is not right. Check both and try again."
        return render_template("signin.html", next=target, email=email, error=error), 401
    # A new session on every sign-in: nothing from before it (fixation) carries over.
    session.clear()
    session["user_id"] = user.id
    session["generation"] = user.session_generation
    session.permanent = True
    return redirect(target)


@blueprint.post("/signout")
def sign_out() -> Any:
    user = _signed_in_user()
    if user is not None:
        # The cookie is signed, not stored: ending the user's sessions is what makes a copy of
        # it, or the same user's other browsers, signed out too.
        services().accounts.sign_out(user.id, actor=_page_actor(user.email))
    session.clear()
    return redirect(url_for("web.sign_in_form", out=1))


# --- the API keys page -----------------------------------------------------------------------


def _rows_data(user: UserInfo) -> dict[str, Any]:
    """What the keys table needs (``_key_rows.html``): the page and the script's refresh."""
    svc = services()
    failures = svc.keys.failures_by_key(user.account_id)
    now = svc.clock.now()
    rows = []
    for key in svc.keys.list(user.account_id, include_deleted=True):
        in_use = failures.get(key.id, [])
        # A deleted key is listed while someone still calls with it: that is what to fix.
        if key.deleted_at is not None and not in_use:
            continue
        grace = [v for v in key.old_values if v.works_until is not None and v.works_until > now]
        rows.append({"key": key, "grace": grace, "in_use": in_use})
    return {
        "rows": rows,
        "is_admin": user.role is Role.ADMIN,
        "grace_choices": GRACE_CHOICES,
        "client_names": CLIENT_NAMES,
    }


def _leaks(user: UserInfo, keys: list[ApiKeyInfo]) -> list[ApiKeyInfo]:
    """The keys whose leak the account's admins are shown: every live key not rolled since its
    leak (anyone who found the value can use it), and, for a week, those rolled since."""
    if user.role is not Role.ADMIN:
        return []
    now = services().clock.now()
    return [
        key
        for key in keys
        if key.leaked_at is not None
        and key.deleted_at is None
        and (
            key.rolled_at is None
            or key.rolled_at < key.leaked_at
            or now - key.leaked_at < LEAK_SHOWN_AFTER_ROLL
        )
    ]


def _page_data(user: UserInfo) -> dict[str, Any]:
    svc = services()
    rows = _rows_data(user)
    is_admin = user.role is Role.ADMIN
    audit = None
    if is_admin:
        cursor = request.args.get("audit_cursor") or None
        try:
            audit = svc.audit.list(
                user.account_id, PageQuery(limit=AUDIT_ENTRIES_SHOWN, cursor=cursor)
            )
        except InvalidCursor:  # a link edited by hand: the newest entries instead
            audit = svc.audit.list(user.account_id, PageQuery(limit=AUDIT_ENTRIES_SHOWN))
    return {
        **rows,
        "leaks": _leaks(user, [row["key"] for row in rows["rows"]]),
        "user": user,
        "account": svc.accounts.get(user.account_id),
        "integrations": svc.hooks.integrations(user.account_id),
        "permissions": list(Permission),
        "policy": svc.key_policies.get(user.account_id),
        "on_leak_choices": ON_LEAK_CHOICES,
        "max_age_limit": MAX_AGE_DAYS_LIMIT,
        "audit": audit,
    }


def _page(user: UserInfo, status: int = 200, **extra: Any) -> Response:
    html = render_template("api_keys.html", **_page_data(user), **extra)
    return Response(html, status=status)


def _answer(user: UserInfo, message: str, issued: IssuedApiKey | None = None) -> Response:
    """After an action: JSON with the fresh rows for the page's script, or the whole page. A
    created or rolled key's value is in this answer and nowhere else."""
    if not _wants_json():
        return _page(user, notice=message, issued=issued)
    answer = {"message": message, "rows": render_template("_key_rows.html", **_rows_data(user))}
    if issued is not None:
        answer.update(name=issued.name, value=issued.value)
    return jsonify(answer)


def _json_error(error: BridgeError) -> Response:
    response = jsonify({"message": error.message, "error": {"code": error.code}})
    response.status_code = error.status
    return response


@blueprint.errorhandler(BridgeError)
def _action_failed(error: BridgeError) -> Response:
    if _wants_json():
        return _json_error(error)
    user = _signed_in_user()
    if user is None:
        page = render_template("signin.html", next=KEYS_PAGE, error=error.message)
        return Response(page, error.status if error.status < 500 else 400)
    return _page(user, status=error.status, error=error.message)


@blueprint.get("/")
def home() -> Response:
    return redirect(KEYS_PAGE)  # type: ignore[return-value]


@blueprint.get(KEYS_PAGE)
@signed_in
def api_keys(user: UserInfo) -> Response:
    return _page(user)


@blueprint.post(KEYS_PAGE)
@signed_in
def create_key(user: UserInfo) -> Response:
    _require_admin(user)
    try:
        form = NewKeyForm.model_validate(request.form.to_dict())
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        field = "Name" if problem["loc"] and problem["loc"][0] == "name" else "Permission"
        raise InvalidKeyForm(f"{field}: {problem['msg']}.") from None
    issued = services().keys.create(
        user.account_id, form.name, form.permission, actor=_page_actor(user.email)
    )
    return _answer(user, f"Created the key {issued.name!r}.", issued)


@blueprint.post(f"{KEYS_PAGE}/<key_id>/roll")
@signed_in
def roll_key(user: UserInfo, key_id: str) -> Response:
    _require_admin(user)
    choice = GRACE_CHOICES.get(request.form.get("grace", "0"))
    if choice is None:
        raise InvalidGrace("Choose when the old value stops working.")
    _, grace = choice
    issued = services().keys.roll(user.account_id, key_id, grace, actor=_page_actor(user.email))
    when = "now" if not grace else f"on {format_time(services().clock.now() + grace)}"
    return _answer(
        user,
        f"Rolled the key {issued.name!r}: its old value stops working {when}.",
        issued,
    )


@blueprint.post(f"{KEYS_PAGE}/<key_id>/delete")
@signed_in
def delete_key(user: UserInfo, key_id: str) -> Response:
    _require_admin(user)
    deleted = services().keys.delete(user.account_id, key_id, actor=_page_actor(user.email))
    return _answer(user, f"Deleted the key {deleted.name!r}.")


@blueprint.post(f"{KEYS_PAGE}/policy")
@signed_in
def change_policy(user: UserInfo) -> Response:
    _require_admin(user)
    max_age = request.form.get("max_age_days", "").strip()
    try:
        change = KeyPolicyChange.model_validate(
            {
                "max_age_days": int(max_age) if max_age else None,
                "on_leak": request.form.get("on_leak", OnLeak.NOTIFY.value),
            }
        )
    except ValueError:  # int() or the model's own checks (pydantic's error is a ValueError)
        raise InvalidPolicyForm(
            f"Maximum age: enter a whole number of days from 1 to {MAX_AGE_DAYS_LIMIT}, or leave "
            "it empty for no maximum; on a leak: choose one of the two choices."
        ) from None
    policy = services().key_policies.change(user.account_id, change, actor=_page_actor(user.email))
    age = f"{policy.max_age_days} days" if policy.max_age_days else "no maximum age"
    return _answer(user, f"Saved the key policy: {age}; on a leak: {policy.on_leak.value}.")
