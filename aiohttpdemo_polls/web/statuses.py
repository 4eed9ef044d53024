"""What each error status is called and says: on the site's error pages (translated), in the API's
problem documents and in its OpenAPI document (English). One table, so they cannot drift apart."""

from http import HTTPStatus
from typing import NamedTuple

from .i18n import N_


class Status(NamedTuple):
    title: str  # the status's name (RFC 9110): a page's heading, a problem's title
    page: str | None  # what an error page says; None where only the API answers with it
    api: str  # what a problem document says when the code that refused said nothing more


STATUSES = {
    400: Status(
        N_("Bad Request"),
        N_("The request could not be understood."),
        "The request could not be understood.",
    ),
    403: Status(
        N_("Forbidden"),
        N_("You are not allowed to do that."),
        "You are not allowed to do that.",
    ),
    404: Status(
        N_("Not Found"),
        N_("There is no such page. The poll may not exist or may not be published yet."),
        "There is no such poll or address. The poll may not exist or may not be published yet.",
    ),
    405: Status(
        N_("Method Not Allowed"),
        N_("That address does not accept this kind of request."),
        "That address does not accept this method; the Allow header lists those it does.",
    ),
    409: Status(
        N_("Conflict"),
        N_("That cannot be done in the poll's current state."),
        "That cannot be done in the poll's current state.",
    ),
    410: Status(
        N_("Gone"),
        N_("The site's operator removed this poll."),
        "The site's operator removed this poll.",
    ),
    413: Status(
        N_("Content Too Large"),
        N_("The request was too large."),
        "The request body is too large.",
    ),
    # Only the API answers these (no page takes JSON): English alone, nothing for the catalogs.
    415: Status(
        "Unsupported Media Type",
        None,
        "Send the body as JSON, with Content-Type: application/json.",
    ),
    422: Status(
        "Unprocessable Content",
        None,
        "Some fields are not valid; `errors` says what is wrong with each.",
    ),
    429: Status(
        N_("Too Many Requests"),
        N_("Too many requests from your address. Please try again later."),
        "Too many requests. Try again after the number of seconds in Retry-After.",
    ),
    500: Status(
        N_("Internal Server Error"),
        N_("Something went wrong on our side. It has been logged; please try again later."),
        "Something went wrong on our side. It has been logged; please try again later.",
    ),
    503: Status(
        N_("Service Unavailable"),
        N_("The service is unavailable right now. Please try again in a moment."),
        "The service is unavailable right now. Please try again in a moment.",
    ),
}


def title(status: int) -> str:
    """The status's name: the table's, else Python's phrase for it, else 'Error'."""
    if status in STATUSES:
        return STATUSES[status].title
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return N_("Error")


def page_text(status: int) -> str:
    """What an error page says of `status` when the code that refused said nothing more."""
    known = STATUSES.get(status)
    return known.page if known and known.page else title(status)


def api_text(status: int) -> str:
    """What a problem document says of `status` when the code that refused said nothing more."""
    known = STATUSES.get(status)
    return known.api if known else title(status)
