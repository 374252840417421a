"""A strict YAML reader for specs: safe tags only, no duplicate keys, YAML 1.2 scalars.

PyYAML follows YAML 1.1: `1e-4` is a string, `yes`/`no`/`on`/`off` are booleans and `010` is octal 8. Here, as in
YAML 1.2, `1e-4` is a float, only true/false are booleans (so `no` stays the string "no") and integers are decimal
(`010` is 10; `0x1F` and `0o17` are hexadecimal and octal); `!!python/...` tags are refused. A spec is small: a file
over 1 MiB, or one whose aliases expand to more than 100,000 values (a "billion laughs" document), is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tuner.errors import SpecError, one_line

_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"
_INT = "tag:yaml.org,2002:int"
MAX_BYTES = 2**20
MAX_VALUES = 100_000


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
        base = {"0x": 16, "0o": 8}.get(digits[:2].lower(), 10)
        return sign * int(digits[2:] if base != 10 else digits, base)

    def compose_document(self):
        document = super().compose_document()
        if document is not None and _expanded_size(document, {}) > MAX_VALUES:
            raise yaml.YAMLError(f"expands to more than {MAX_VALUES} values through aliases; expected a spec")
        return document


def _expanded_size(node, sizes: dict) -> int:
    """How many values the document holds once every alias is expanded (memoised: cheap even when huge)."""
    if id(node) not in sizes:
        children = node.value if isinstance(node.value, list) else []
        parts = [part for child in children for part in (child if isinstance(child, tuple) else (child,))]
        sizes[id(node)] = 1 + sum(_expanded_size(part, sizes) for part in parts)
    return sizes[id(node)]


_StrictLoader.add_constructor(_INT, _StrictLoader.construct_yaml_int)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (_BOOL, _FLOAT, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                |[0-9][0-9_]*[eE][-+]?[0-9]+)
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; any problem becomes a one-line SpecError naming `source` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        if "could not determine a constructor" in problem:
            problem = f"tag {exc.problem.split('tag ')[-1]} is not allowed (only plain YAML)"
        raise SpecError(f"{where}: {' '.join(problem.split())}") from None


def read_yaml_file(path: Path) -> Any:
    """A spec file's YAML: a regular file (a device or a FIFO would never end, or block), of at most MAX_BYTES (the
    cap counts the bytes read, not what the file system says its size is)."""
    try:
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise SpecError(f"{path}: is {kind}; expected a spec YAML file")
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise SpecError(f"{path}: is over {MAX_BYTES} bytes; a spec is at most {MAX_BYTES} (expected a spec YAML)")
        text = data.decode()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: is not UTF-8 text (byte {exc.start}); expected a spec YAML") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({one_line(exc)})") from None
    return parse_yaml(text, str(path))
