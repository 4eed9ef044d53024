"""A process's descriptor limit, for the tests that hold thousands of sockets at once."""

import contextlib
import resource
from collections.abc import Iterator


@contextlib.contextmanager
def open_files_limit(needed: int) -> Iterator[None]:
    """The soft descriptor limit raised to the hard one (what the test starts inherits it);
    restored after. Fails, saying so, where the hard limit is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard >= needed, (
        f"this test needs {needed} open files per process; the hard limit is {hard} (ulimit -Hn)"
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
