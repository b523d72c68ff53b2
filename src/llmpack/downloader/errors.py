"""Every way a download can fail, each with one clear line and its own exit code."""

from __future__ import annotations


class DownloadError(Exception):
    exit_code = 1


class GatedError(DownloadError):
    exit_code = 3


class NotFoundError(DownloadError):
    exit_code = 4


class RevisionNotFoundError(DownloadError):
    exit_code = 5


class NoSpaceError(DownloadError):
    exit_code = 6


class NetworkError(DownloadError):
    """The endpoint cannot be reached, or the transfer stalled through every retry."""

    exit_code = 7


class VerificationError(DownloadError):
    exit_code = 8


EXIT_CODES = {cls.__name__: cls.exit_code for cls in (GatedError, NotFoundError, RevisionNotFoundError,
                                                       NoSpaceError, NetworkError, VerificationError)}
