"""Where in a TOML file a problem is: `file:line: message`, for every config file we read.

A person fixing a refused file needs the line. tomllib says it for syntax
errors; msgspec says a path (`$.stages.pilot.max_position`); our own
checks say a value. Each is turned into the line that holds it.
"""

from __future__ import annotations

import re

_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_PATH = re.compile(r" - at `\$\.?([^`]*)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def located(path: object, text: str, message: str) -> str:
    """`path:line: message` where a line can be found, else `path: message`."""
    line = line_of(text, message)
    clean = _TOML_LINE.sub("", message).strip()
    clean = _PATH.sub(lambda m: f" (at {m[1]})" if m[1] else "", clean).strip()
    return f"{path}:{line}: {clean}" if line else f"{path}: {clean}"


def line_of(text: str, message: str) -> int | None:
    found = _TOML_LINE.search(message)
    if found:
        return int(found[1])
    lines = text.splitlines()
    at = _PATH.search(message)
    if at is not None:
        segments = [s for s in re.split(r"[.\[\]]", at[1]) if s and not s.isdigit()]
        unknown = _UNKNOWN_FIELD.search(message)
        if unknown:
            segments.append(unknown[1])
        found_line = _key_line(lines, segments) if segments else None
        if found_line is not None:
            return found_line
    quoted = re.findall(r"'([^']+)'|\"([^\"]+)\"", message)
    for single, double in reversed(quoted):  # the last named is the most specific
        needle = single or double
        for number, line in enumerate(lines, 1):
            if needle in line and not line.lstrip().startswith("#"):
                return number
    return None


def _key_line(lines: list[str], segments: list[str]) -> int | None:
    """The line of `key` (the last segment) inside the table the others name."""
    *table, key = segments
    key_pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    current: list[str] = []
    best: int | None = None
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header:
            current = [part.strip().strip('"') for part in header[1].split(".")]
            if current == segments:
                best = best or number  # the table itself, when the key is a table
            continue
        if key_pattern.match(line):
            if current == table:
                return number
            best = best or number
    return best
