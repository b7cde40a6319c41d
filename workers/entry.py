"""Entry point for the ``dramatiq`` command: ``dramatiq workers.entry:setup``.

Dramatiq calls ``setup`` in every worker process it forks, so each process
builds its own engine and connections after the fork.
"""

from workers.bootstrap import build_runtime, install
from workers.logs import configure_logging
from workers.settings import load_settings


def setup() -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    install(build_runtime(settings))
