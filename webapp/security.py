"""Request hardening for every response and request: security headers, no NUL in input, no cookie session on the API."""
from __future__ import annotations

from flask import Flask, abort, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config as settings

API_PREFIX = "/api/"

# Scripts only from this origin (the vendored htmx and Chart.js, app.js): no inline script or event handler, so
# markup that escaped its escaping could not run. Inline styles stay allowed (style attributes in templates, the
# indicator styles htmx adds). No page may be framed (clickjacking), nor forms post elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def security_headers(response):
    """The headers above on every response (a view that set one of its own keeps it). One pass over the headers:
    werkzeug's setdefault raises and catches a KeyError per missing header, a cost on every runtime request."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            headers.add(name, value)
    if "cache-control" not in present and response.mimetype == "text/html":
        # A page is never stored: Back shows the page as it is now (not a copy from before a Stop or a role
        # change), and a link or key shown once cannot come back from the browser's cache.
        headers.add("Cache-Control", "no-store")
    return response


class CookieSessionsOutsideApi(SecureCookieSessionInterface):
    """The signed-cookie session for the web app; none for the token-authenticated JSON API, which never reads
    it (it would only cost the runtime's hot path a serializer per request)."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(API_PREFIX):  # opened before routing: no blueprint known yet
            return self.make_null_session(app)
        return super().open_session(app, request)


def reject_nul_bytes() -> None:
    """No database stores NUL in text (PostgreSQL refuses it): refuse it in the path, query and form.

    The JSON API validates its own inputs (ids refuse control characters, text and fields refuse NUL) and reads
    no query string or form, so it skips this (reading `request.values` parses the body's form data)."""
    if request.blueprint == "api":
        return
    if "\x00" in request.path:
        abort(400, "The URL contains a NUL character.")
    for name, value in request.values.items(multi=True):
        if "\x00" in name or "\x00" in value:
            abort(400, f"The field '{name.replace(chr(0), '')}' contains a NUL character.")


def trust_proxies(app: Flask) -> None:
    """With TRUSTED_PROXIES = n > 0, the request is the one the client sent to the n-th proxy from the app: the
    client's address (request.remote_addr) from X-Forwarded-For, the scheme from X-Forwarded-Proto and the host from
    X-Forwarded-Host, each the value that proxy set; so the links the app builds (an invitation's) read https://
    and the public host behind a proxy that terminates TLS. With 0 (the default) the headers are ignored, so no client
    can choose them."""
    count = settings.proxy_count("TRUSTED_PROXIES", app.config.get("TRUSTED_PROXIES"))
    app.config["TRUSTED_PROXIES"] = count
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=0, x_prefix=0)
