# SPDX-License-Identifier: BSD-3-Clause
"""Usage errors of the HTML renderers (web forms, archive pages) get a 4xx.

DaCHS 2.7 answers the web side's usage errors in three ways casuvo changes:

- :func:`form_errors_are_400`: a form submitted with bad input (an unparsable
  position, a negative radius, a declination beyond the pole) is re-rendered
  with the error next to the field, with HTTP 200
  (``gavo.web.formrender.FormRenderer._formatOutput`` renders the
  ``FormErrors`` that ``formal``'s ``Form.process`` or
  ``FormMixin._handleInputErrors`` returned like a result).  People still get
  the same page, with the message at the field; scripts and crawlers see 400.
- :func:`validation_errors_are_400`: elsewhere a ``ValidationError`` reaching
  DaCHS's HTML error pages became an "internal error" page with 500
  (``weberrors.getErrorPage`` matches exception classes exactly and has no
  page for it); the qp renderer turned it into a 404.  Both are now a 400
  page with the message.
- :func:`strict_page_parameters`: the archive pages (the image page, a qp
  service, and the overview, a volatile page) take no query parameters, and
  DaCHS ignored any it was given.  A service with the property
  ``strictParameters`` now refuses them with a 400 naming them, so a mistyped
  or stale link says so instead of showing something else.
"""

from __future__ import annotations

from typing import Any

__all__ = ["form_errors_are_400", "install", "strict_page_parameters",
           "validation_errors_are_400"]


def form_errors_are_400() -> None:
    """A form re-rendered with usage errors answers HTTP 400."""
    from gavo.formal import form as formal_form
    from gavo.web import formrender

    renderer = formrender.FormRenderer
    original = renderer._formatOutput
    if getattr(original, "_casuvo_form_400", False):
        return

    def format_output(self: Any, res: Any, request: Any) -> Any:
        if isinstance(res, formal_form.FormErrors) and res:
            request.setResponseCode(400)
        return original(self, res, request)

    format_output._casuvo_form_400 = True  # type: ignore[attr-defined]
    renderer._formatOutput = format_output


def _bad_request_page() -> type:
    from gavo import base
    from gavo.web import weberrors

    class BadRequestPage(weberrors.ErrorPage):
        """DaCHS's error page with status 400 for usage errors."""

        handles = base.ValidationError
        status = 400
        titleMessage = "Bad Request"  # noqa: N815 - DaCHS's name
        beforeMessage = "The request could not be answered:"  # noqa: N815
        afterMessage = "Please correct the request and try again."  # noqa: N815

        def render(self, request: Any) -> Any:
            # the message may quote the request's text: say how it is encoded
            request.setHeader("content-type", "text/html;charset=utf-8")
            return weberrors.ErrorPage.render(self, request)

    return BadRequestPage


def validation_errors_are_400() -> None:
    """DaCHS's HTML error pages answer a ValidationError with 400, not 500 (or 404)."""
    from gavo import base
    from gavo.web import qprenderer, weberrors

    lookup = weberrors.getErrorPage
    if getattr(lookup, "_casuvo_page_400", False):
        return
    page = _bad_request_page()

    def get_error_page(cls: type) -> Any:
        if isinstance(cls, type) and issubclass(cls, base.ValidationError):
            return page
        return lookup(cls)

    get_error_page._casuvo_page_400 = True  # type: ignore[attr-defined]
    weberrors.getErrorPage = get_error_page

    handle = qprenderer.QPRenderer._handleError

    def qp_error(self: Any, flr: Any, request: Any) -> Any:
        if flr.check(base.ValidationError):
            return flr
        return handle(self, flr, request)

    qprenderer.QPRenderer._handleError = qp_error


def _as_sent(name: str) -> str:
    try:
        return name.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return name


def strict_page_parameters() -> None:
    """qp and volatile pages of services with ``strictParameters`` refuse query parameters."""
    from gavo import base
    from gavo.web import constantrender, qprenderer, weberrors
    from twisted.python import failure
    from twisted.web import server

    def guarded(render: Any) -> Any:
        def render_checked(self: Any, request: Any) -> Any:
            strict = self.service.getProperty("strictParameters", "False") == "True"
            # DaCHS decodes parameter names as Latin-1; show them as sent (UTF-8)
            given = sorted(_as_sent(name) for name in request.strargs) if strict else []
            if given:
                error = base.ValidationError(
                    f"This page takes no query parameters; remove {', '.join(given)}",
                    given[0])
                weberrors.renderDCErrorPage(failure.Failure(error), request)
                return server.NOT_DONE_YET
            return render(self, request)

        render_checked._casuvo_strict_pages = True  # type: ignore[attr-defined]
        return render_checked

    for cls in (qprenderer.QPRenderer, constantrender.FixedPageRenderer):
        if not getattr(cls.render, "_casuvo_strict_pages", False):
            cls.render = guarded(cls.render)


def install() -> None:
    """Install the three adjustments; idempotent."""
    form_errors_are_400()
    validation_errors_are_400()
    strict_page_parameters()
