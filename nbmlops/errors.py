"""Exception hierarchy shared by every layer.

Every error nbmlops raises on purpose derives from :class:`NbMlopsError`; the three
subclasses map one-to-one onto HTTP statuses in the server layer (404, 409, 400), so a
caller can tell "it is not there" from "it is already there" from "what you asked is wrong"
without parsing messages.
"""

from __future__ import annotations


class NbMlopsError(Exception):
    """Base class of every error raised deliberately by nbmlops."""

    http_status = 500


class NotFound(NbMlopsError, LookupError):
    """The experiment, run, metric, artifact, model or version asked for does not exist."""

    http_status = 404


class AlreadyExists(NbMlopsError):
    """Creating something whose unique name or key is already taken (or conflicting rewrite)."""

    http_status = 409


class InvalidArgument(NbMlopsError, ValueError):
    """The caller's input is malformed; the message names the argument and the rule."""

    http_status = 400


class StoreError(NbMlopsError):
    """The store itself cannot be used: damaged file, unknown schema, not an nbmlops store."""

    http_status = 500
