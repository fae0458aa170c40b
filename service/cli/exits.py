"""Exit codes of `oblivio` (the README's officer's guide lists them) and the usage error."""

from enum import IntEnum

from service.db.enums import RequestStatus


class Exit(IntEnum):
    OK = 0  # watch: the request completed
    FAILED = 1  # refused as invalid (400, 413, 415, 422); verify: signature INVALID
    USAGE = 2  # bad arguments or an unreadable input file
    NOT_FOUND = 3
    AUTH = 4  # missing, wrong or revoked key (401), or a role that may not do it (403)
    CONFLICT = 5  # not in a state that allows it (409): too late to cancel, key reused, promotion refused; serve: unmigrated DB
    UNREACHABLE = 6  # no answer (connection refused, timeout) or 503 Unavailable: retry later
    SERVER_ERROR = 7  # any other 5xx: a bug, quote the request id
    REQUEST_FAILED = 10  # watch: the request ended failed
    REQUEST_CANCELLED = 11
    REQUEST_REJECTED = 12
    WATCH_TIMEOUT = 13  # watch --timeout passed before a terminal state


WATCH_EXIT = {
    RequestStatus.completed: Exit.OK,
    RequestStatus.failed: Exit.REQUEST_FAILED,
    RequestStatus.cancelled: Exit.REQUEST_CANCELLED,
    RequestStatus.rejected: Exit.REQUEST_REJECTED,
}
STATUS_EXIT = {401: Exit.AUTH, 403: Exit.AUTH, 404: Exit.NOT_FOUND, 409: Exit.CONFLICT, 503: Exit.UNREACHABLE}


class UsageError(Exception):
    pass
