"""Text for the terminal and the log: control characters of file names escaped.

A file name may hold a newline (which would forge a log line) or an escape sequence (which would
rewrite the terminal); ``printable`` shows such characters as ``\\n``, ``\\x1b``, ``\\u202e``, and
``SafeFormatter`` applies it to every logged message.
"""
from __future__ import annotations

import logging
import unicodedata

# Bidirectional overrides and isolates: they reorder what the terminal shows after them.
_BIDI_CONTROLS = frozenset('\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069')


def _escape(char: str) -> str:
    if char == '\n':
        return '\\n'
    if char == '\r':
        return '\\r'
    if char == '\t':
        return '\\t'
    code = ord(char)
    return f'\\x{code:02x}' if code < 0x100 else f'\\u{code:04x}'


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ('Cc', 'Zl', 'Zp') or char in _BIDI_CONTROLS


def printable(text, keep_newlines: bool = False) -> str:
    """``str(text)`` with control characters (C0, DEL, C1, line separators, bidi overrides)
    escaped; ``keep_newlines`` keeps ``\\n`` for a message of several lines."""
    text = str(text)
    if text.isprintable():
        return text
    return ''.join(char if not _is_control(char) or (keep_newlines and char == '\n') else _escape(char)
                   for char in text)


class SafeFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose messages have their control characters escaped (the
    traceback of ``exc_info``, appended after the message, is left as it is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.message = printable(record.message)
        return super().formatMessage(record)


def configure_logging(level=logging.INFO, fmt: str = '%(levelname)s %(name)s: %(message)s') -> None:
    """``logging.basicConfig`` for a command, with ``SafeFormatter`` on the handler it adds."""
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=level, format=fmt)
    for handler in root.handlers:
        if handler not in before:
            handler.setFormatter(SafeFormatter(fmt))
