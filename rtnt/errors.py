"""User-facing errors: one line saying what is wrong, where, and how to fix it."""


class RtntError(Exception):
    """Base class of every error rtnt reports to a user without a traceback.

    The message is a single line: what went wrong, where (file, layer, key),
    and how to fix it.
    """


class CaptureError(RtntError):
    """A capture file or pair cannot be used as given."""


class ConfigError(RtntError):
    """A composed configuration value is invalid."""


class ExportError(RtntError):
    """A model cannot be exported to RTNeural JSON."""


class TrackingError(RtntError):
    """A tracking URI that names no usable MLflow store."""


class ModelJsonError(RtntError):
    """An RTNeural JSON model file is malformed or unsupported."""


class NamFileError(ModelJsonError):
    """A NAM `.nam` model file is malformed or unsupported."""


def exception_summary(exc: BaseException, max_lines: int = 1) -> str:
    """The first `max_lines` non-empty lines of an exception's message joined by '; ', or its type name."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(lines[:max_lines]) if lines else type(exc).__name__
