"""Typed options from YAML: mappings parsed once into dataclasses.

Unknown keys are errors that name the key; ``key.path=value`` overrides (value parsed as YAML) or
``{dotted key: value}`` mappings are applied before parsing; ``to_dict`` gives the resolved options
back for archiving. Each command declares its own options next to the code that uses them
(``dfdnet.models.options``, ``dfdnet.dictionary.options``, ``dfdnet.pipeline.options``).
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path

import yaml


class OptionsError(ValueError):
    """An options file or override is invalid (the message names the key and the file)."""


def _convert(value, hint, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except OptionsError:
                continue
        raise OptionsError(f'{where}: {value!r} does not fit {hint}')
    if hint is typing.Any:
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionsError(f'{where}: expected true/false, got {value!r}')
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionsError(f'{where}: expected an integer, got {value!r}')
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionsError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise OptionsError(f'{where}: expected a string, got {value!r}')
        return value
    if hint is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise OptionsError(f'{where}: expected a list, got {value!r}')
        return tuple(value)
    return value


def from_dict(cls, data, where: str = ''):
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ``OptionsError``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OptionsError(f'{where or "options"}: expected a mapping, got {type(data).__name__}')
    if hasattr(cls, 'from_dict'):
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise OptionsError(f'{where}: {exc}') from exc
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f'{where}.' if where else ''
        raise OptionsError(f'unknown option(s) {", ".join(prefix + k for k in unknown)}; '
                           f'valid keys{" of " + where if where else ""}: {", ".join(names)}')
    kwargs = {k: _convert(v, hints[k], f'{where}.{k}' if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except OptionsError:
        raise
    except (ValueError, TypeError) as exc:
        raise OptionsError(f'{where or "options"}: {exc}') from exc


def to_dict(obj):
    """Dataclass tree -> plain dict/list values (tuples as lists), for YAML."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def apply_overrides(data: dict, overrides) -> dict:
    """Apply overrides to a nested dict, in place: ``key.path=value`` strings (value parsed as YAML),
    or a mapping ``{'key.path': value}`` whose values are taken as they are (None: not given)."""
    if isinstance(overrides, dict):
        items = [(key, value) for key, value in overrides.items() if value is not None]
    else:
        items = []
        for item in overrides or ():
            if '=' not in item:
                raise OptionsError(f'override {item!r} is not of the form key.path=value')
            key, raw = item.split('=', 1)
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                problem = ' '.join(str(getattr(exc, 'problem', None) or 'not a YAML value').split())
                raise OptionsError(f'override {item!r}: the value is not valid YAML ({problem}); quote text '
                                   "values, e.g. --set 'name=\"a: b\"'") from exc
            if not key.strip():
                raise OptionsError(f'override {item!r} has no key (expected key.path=value)')
            items.append((key.strip(), value))
    for key, value in items:
        *parents, leaf = key.split('.')
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise OptionsError(f'override {key!r}: {part} is not a section')
        node[leaf] = value
    return data


def read_yaml(path) -> dict:
    """The mapping in a YAML options file; ``OptionsError`` naming the file if it is missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise OptionsError(f'options file not found: {path}')
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OptionsError(f'{path}: invalid YAML: {exc}') from exc
    if not isinstance(data, dict):
        raise OptionsError(f'{path}: expected a mapping of options, got {type(data).__name__}')
    return data


# ---------------------------------------------------------------- command-line flags from fields
def option(default, help: str, flag: str | None = None, choices=None, group: str | None = None,
           cli_default=dataclasses.MISSING, negate: bool = False, aliases=(), nargs=None, metavar=None,
           **kwargs):
    """A dataclass field that is also a command-line flag: the one declaration of the option.

    flag: the flag's name (default ``--<field name>``); choices: the allowed values (of each item
    when ``nargs`` is given), checked by ``check_choices`` and listed by the parser; group: the
    ``--help`` section; cli_default: the command's default where it differs from the library's;
    negate: a bool field set False by the flag (e.g. ``--no_html`` for ``write_html``); aliases:
    older spellings still accepted, not listed in ``--help``; nargs, metavar: as in argparse (the
    items' type comes from the annotation, e.g. ``tuple[int, ...]``). Other keyword arguments go
    to ``field``.
    """
    metadata = {'help': help, 'flag': flag, 'choices': tuple(choices) if choices else None, 'group': group,
                'cli_default': cli_default, 'negate': negate, 'aliases': tuple(aliases), 'nargs': nargs,
                'metavar': metavar}
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def flag_fields(cls) -> list:
    """The fields of dataclass ``cls`` declared with ``option`` (each is a command-line flag)."""
    return [f for f in dataclasses.fields(cls) if 'help' in f.metadata]


def flag_of(field) -> str:
    """The command-line flag of an ``option`` field."""
    return field.metadata['flag'] or f'--{field.name}'


def add_flag(target, flag: str, *aliases: str, **kwargs):
    """``target.add_argument(flag, **kwargs)`` plus ``aliases``: other spellings of the same flag
    (same destination), accepted but not listed in ``--help``. Returns the listed action."""
    action = target.add_argument(flag, **kwargs)
    for alias in aliases:
        target.add_argument(alias, **{**kwargs, 'dest': action.dest, 'help': argparse.SUPPRESS,
                                      'default': argparse.SUPPRESS})
    return action


def _item_type(hint):
    """int for ``int``, ``int | None``, ``tuple[int, ...]`` or ``list[int]``; str for a bare tuple/list."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint in (tuple, list):
        return str
    if typing.get_origin(hint) in (tuple, list):
        return next((a for a in typing.get_args(hint) if a is not Ellipsis), str)
    return hint


def add_arguments(parser, cls, groups: dict | None = None, exclude=(), prefix: str = '',
                  defaults: bool = True) -> None:
    """Add a flag to ``parser`` for every ``option`` field of dataclass ``cls`` but those named in
    ``exclude``; a flag's destination is ``prefix`` + the field name.

    groups: {group name: an argparse group}; a field's flag goes to its group (created on demand).
    The type comes from the annotation (int, float, str, Path; ``X | None`` as X; the items' type
    with ``nargs``). defaults: False for flags that override an options file: a flag not given is
    then absent from the parsed namespace (see ``overrides_from_args``); --help still shows the
    field's default.
    """
    groups = {} if groups is None else groups
    hints = typing.get_type_hints(cls)
    for f in flag_fields(cls):
        if f.name in exclude:
            continue
        meta = f.metadata
        target = parser
        if meta['group']:
            if meta['group'] not in groups:
                groups[meta['group']] = parser.add_argument_group(meta['group'])
            target = groups[meta['group']]
        default = f.default if meta['cli_default'] is dataclasses.MISSING else meta['cli_default']
        flag, dest = flag_of(f), prefix + f.name
        if _item_type(hints[f.name]) is bool:
            add_flag(target, flag, *meta['aliases'], dest=dest, help=meta['help'],
                     action='store_false' if meta['negate'] else 'store_true',
                     **({} if defaults else {'default': argparse.SUPPRESS}))
            continue
        # The choices are listed here and checked by the dataclass (check_choices, after any
        # normalisation such as '.PNG' -> 'png'), whose ValueError the command reports.
        choices = f' (one of: {", ".join(map(str, meta["choices"]))})' if meta['choices'] else ''
        shown = ' '.join(map(str, default)) if isinstance(default, (tuple, list)) else default
        shown = f' (default {shown})' if shown not in (None, '') else ''
        add_flag(target, flag, *meta['aliases'], dest=dest, type=_item_type(hints[f.name]), nargs=meta['nargs'],
                 default=default if defaults else argparse.SUPPRESS,
                 metavar=meta['metavar'] or flag.lstrip('-').upper(), help=meta['help'] + choices + shown)


def options_from_args(cls, args, **extra):
    """``cls`` built from the parsed flags of its ``option`` fields (plus ``extra`` fields); a field
    without a flag in ``args`` (``add_arguments``'s ``exclude``) keeps its default."""
    return cls(**{f.name: getattr(args, f.name) for f in flag_fields(cls) if hasattr(args, f.name)}, **extra)


def overrides_from_args(cls, args, prefix: str = '') -> dict:
    """{``prefix`` + field name: value} for each ``option`` field of ``cls`` whose flag was given
    (flags added with ``add_arguments(..., defaults=False)``), for ``apply_overrides``."""
    given = vars(args)
    return {prefix + f.name: given[prefix + f.name] for f in flag_fields(cls) if prefix + f.name in given}


def check_choices(obj) -> None:
    """ValueError naming the flag when an ``option`` field with choices holds another value (or,
    for a field with ``nargs``, an item that is not one of them)."""
    for f in flag_fields(type(obj)):
        choices = f.metadata['choices']
        value = getattr(obj, f.name)
        if not choices or (f.metadata['nargs'] is not None and value is None):
            continue
        for item in (value if f.metadata['nargs'] is not None else (value,)):
            if item not in choices:
                raise ValueError(f'{flag_of(f)} must be one of {", ".join(map(str, choices))}; got {item!r}')
