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


class ModelJsonError(RtntError):
    """An RTNeural JSON model file is malformed or unsupported."""
