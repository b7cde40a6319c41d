"""The one error tree of mailroom.

Delivery errors are either transient (retry later) or permanent (dead-letter now);
an invalid event is dead-lettered at once and never retried.
"""

from collections.abc import Sequence


class MailroomError(Exception):
    """Base class for every error mailroom raises on purpose."""


class ConfigError(MailroomError):
    """A setting is missing or invalid; ``str()`` is one line naming the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class InvalidEvent(MailroomError):
    """An event failed validation; ``str()`` says why in one line, for the dead
    letter; ``problems`` lists every reason, one line each (``mailroom publish``)."""

    def __init__(self, reason: str, problems: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.problems = list(problems) or [reason]


class RenderError(MailroomError):
    """A template could not be rendered; retrying would render the same way."""


class DeliveryError(MailroomError):
    """A transport could not hand the message over."""


class TransientError(DeliveryError):
    """Worth retrying: connection refused, timeout, 4xx reply."""


class PermanentError(DeliveryError):
    """Retrying cannot help: 5xx reply, recipient rejected."""


class TransportConfigError(PermanentError):
    """The transport itself is set up wrong (refused credentials, unverified sender
    domain, untrusted certificate): no mail gets through it until an operator acts.
    Another transport may still send, so failover moves on."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{problem} (check {setting})")
        self.setting = setting
        self.problem = problem


class VerificationFailed(MailroomError):
    """A code or token did not verify.  ``code`` is a ``domain.vocabulary.Verdict``
    other than ``ok``: answers that never tell whether an account or an address exists."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
