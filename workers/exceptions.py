"""Errors the engine raises; the HTTP edge maps each to a status code."""


class AlrankError(Exception):
    """Base of every error the engine raises on purpose."""


class NotFound(AlrankError):
    """A project, schema, item, label, job or model that does not exist."""


class Conflict(AlrankError):
    """The request clashes with what is stored (a project that already exists)."""


class InvalidInput(AlrankError):
    """Input that is well-formed JSON but breaks a rule of the project.

    ``details`` maps a field (or item index) to the reasons it was refused.
    """

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class NotTrainable(AlrankError):
    """A schema has too few labels, or one class only, to train a model."""
