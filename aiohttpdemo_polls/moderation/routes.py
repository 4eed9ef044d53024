"""The addresses of reports (under each poll) and of the operator's /admin (all private)."""

from aiohttp import web

from ..web import headers
from ..web.routes import POLL, add_get
from . import admin, reports


def setup(app: web.Application) -> None:
    router = app.router
    report = router.add_resource(POLL + "/report", name="report")
    add_get(report, reports.report_form)
    report.add_route("POST", reports.file_report)
    router.add_get(POLL + "/report/sent", reports.report_sent, name="report_sent")
    # The operator's pages: no cache keeps them, no Referer names them, no search engine lists them.
    add_get(_private(app, "/admin", "admin"), admin.admin_page)
    _private(app, "/admin/sign-in", "admin_sign_in").add_route("POST", admin.sign_in)
    _private(app, "/admin/sign-out", "admin_sign_out").add_route("POST", admin.sign_out)
    _private(app, "/admin/poll/{question_id:\\d+}", "admin_poll").add_route("POST", admin.poll_action)
    add_get(_private(app, "/admin/log", "admin_log"), admin.audit_log)


def _private(app: web.Application, path: str, name: str) -> web.Resource:
    return headers.private(app, app.router.add_resource(path, name=name), noindex=True)
