"""Breaking-change checker for protobuf contracts, in the spirit of `buf breaking`.

The layers talk only through the contracts in proto/chimera/v1, so a change that
breaks an existing client (wire format or generated code) must be a deliberate
decision, not an accident. This module compares a committed baseline
FileDescriptorSet with the current one and reports every change that could break
a client; additions are always allowed.

Reported (one line each, naming the file and the element):
  * a file, message, enum, service or extension removed (or renamed, which is
    the same thing to a client; a likely rename target is hinted) or moved to
    another file (generated-code import paths change);
  * a field removed, renumbered (same name, new number), renamed (same number,
    new name), or changing type, type name, label, oneof or presence;
  * an enum value removed, renumbered or renamed;
  * an RPC removed, or changing its input/output type or streaming flags.

Usage:
  breaking.py --baseline OLD.pb --current NEW.pb [--exclude PREFIX ...]
Exit status: 0 no breaking change, 1 breaking changes found, 2 bad arguments or
unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterator, Sequence, TypeVar

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

FieldProto = descriptor_pb2.FieldDescriptorProto
MessageProto = descriptor_pb2.DescriptorProto
EnumProto = descriptor_pb2.EnumDescriptorProto
ServiceProto = descriptor_pb2.ServiceDescriptorProto
EnumValueProto = descriptor_pb2.EnumValueDescriptorProto
FileProto = descriptor_pb2.FileDescriptorProto

T = TypeVar("T")
N = TypeVar("N", FieldProto, EnumValueProto)  # a numbered, named element


class UsageError(Exception):
    """Bad command-line arguments or unreadable input (exit status 2)."""


@dataclass(frozen=True)
class Located(Generic[T]):
    """A descriptor together with the file that defines it."""

    file: str
    proto: T


@dataclass
class Index:
    """Every named element of a descriptor set, keyed by fully qualified name.

    Keying by full name rather than by file lets the checker tell a removal from
    a move between files.
    """

    files: dict[str, FileProto] = field(default_factory=dict)
    messages: dict[str, Located[MessageProto]] = field(default_factory=dict)
    enums: dict[str, Located[EnumProto]] = field(default_factory=dict)
    services: dict[str, Located[ServiceProto]] = field(default_factory=dict)
    extensions: dict[str, Located[FieldProto]] = field(default_factory=dict)


def _qualify(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _index_message(index: Index, file_name: str, scope: str, msg: MessageProto) -> None:
    full = _qualify(scope, msg.name)
    index.messages[full] = Located(file_name, msg)
    for nested in msg.nested_type:
        _index_message(index, file_name, full, nested)
    for enum in msg.enum_type:
        index.enums[_qualify(full, enum.name)] = Located(file_name, enum)
    for ext in msg.extension:
        index.extensions[_qualify(full, ext.name)] = Located(file_name, ext)


def build_index(fds: descriptor_pb2.FileDescriptorSet, exclude: Sequence[str] = ()) -> Index:
    """Indexes a descriptor set, skipping files whose name starts with an excluded prefix."""
    index = Index()
    for file in fds.file:
        if any(file.name.startswith(prefix) for prefix in exclude):
            continue
        index.files[file.name] = file
        for msg in file.message_type:
            _index_message(index, file.name, file.package, msg)
        for enum in file.enum_type:
            index.enums[_qualify(file.package, enum.name)] = Located(file.name, enum)
        for service in file.service:
            index.services[_qualify(file.package, service.name)] = Located(file.name, service)
        for ext in file.extension:
            index.extensions[_qualify(file.package, ext.name)] = Located(file.name, ext)
    return index


def _type_text(f: FieldProto) -> str:
    if f.type in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_ENUM, FieldProto.TYPE_GROUP):
        return f.type_name.lstrip(".")
    return FieldProto.Type.Name(f.type).removeprefix("TYPE_").lower()


def _label_text(f: FieldProto) -> str:
    return FieldProto.Label.Name(f.label).removeprefix("LABEL_").lower()


def _oneof_of(msg: MessageProto, f: FieldProto) -> str:
    """Name of the real (not proto3-optional synthetic) oneof holding a field, or ''."""
    if not f.HasField("oneof_index") or f.proto3_optional:
        return ""
    return msg.oneof_decl[f.oneof_index].name


def _oneof_text(name: str) -> str:
    return f'"{name}"' if name else "none"


def _message_shape(msg: MessageProto) -> tuple[tuple[int, str, int, str, int], ...]:
    """The wire-relevant structure of a message, used to recognise a rename."""
    return tuple(sorted((f.number, f.name, f.type, f.type_name, f.label) for f in msg.field))


def _enum_shape(enum: EnumProto) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((v.number, v.name) for v in enum.value))


def _service_shape(service: ServiceProto) -> tuple[tuple[str, str, str, bool, bool], ...]:
    return tuple(
        sorted(
            (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
            for m in service.method
        )
    )


def _parent(full_name: str) -> str:
    return full_name.rpartition(".")[0]


def _removed_or_moved(
    kind: str,
    old: dict[str, Located[T]],
    new: dict[str, Located[T]],
    shape: Callable[[T], object] | None,
    skip: Callable[[T], bool] = lambda _: False,
) -> Iterator[str]:
    """Reports elements of `old` that are missing from `new` or live in another file."""
    added = [name for name in new if name not in old]
    for name, loc in sorted(old.items()):
        if skip(loc.proto):
            continue
        cur = new.get(name)
        if cur is None:
            hint = ""
            if shape is not None:
                twins = [
                    a
                    for a in added
                    if _parent(a) == _parent(name) and shape(new[a].proto) == shape(loc.proto)
                ]
                if len(twins) == 1:
                    hint = f" (renamed to {twins[0]}?)"
            yield f"{loc.file}: {kind} {name} removed{hint}"
        elif cur.file != loc.file:
            yield f"{loc.file}: {kind} {name} moved to {cur.file}"


def _counterparts(old: Sequence[N], new: Sequence[N]) -> Iterator[tuple[N, N | None, N | None]]:
    """Each old field or enum value with the new one at its number and the new one of its name."""
    by_number = {e.number: e for e in new}
    by_name = {e.name: e for e in new}
    for e in old:
        yield e, by_number.get(e.number), by_name.get(e.name)


def _changed(
    kind: str,
    old: dict[str, Located[T]],
    new: dict[str, Located[T]],
    compare: Callable[[str, T, T], Iterator[str]],
) -> Iterator[str]:
    """Runs `compare` on every element that both sets have, naming it by file, kind and name."""
    for name, loc in sorted(old.items()):
        cur = new.get(name)
        if cur is not None:
            yield from compare(f"{loc.file}: {kind} {name}", loc.proto, cur.proto)


def _compare_fields(where: str, old: MessageProto, new: MessageProto) -> Iterator[str]:
    for f, same_slot, same_name in _counterparts(old.field, new.field):
        if same_slot is not None and same_slot.name == f.name:
            yield from _compare_field(where, old, new, f, same_slot)
            continue
        if same_name is not None:
            yield f'{where}: field "{f.name}" renumbered from {f.number} to {same_name.number}'
        if same_slot is not None:
            yield f'{where}: field {f.number} renamed from "{f.name}" to "{same_slot.name}"'
        if same_name is None and same_slot is None:
            yield f'{where}: field {f.number} "{f.name}" removed'


def _compare_field(
    where: str, old_msg: MessageProto, new_msg: MessageProto, old: FieldProto, new: FieldProto
) -> Iterator[str]:
    name = f'field {old.number} "{old.name}"'
    if _type_text(old) != _type_text(new):
        yield f"{where}: {name} type changed from {_type_text(old)} to {_type_text(new)}"
    if old.label != new.label:
        yield f"{where}: {name} label changed from {_label_text(old)} to {_label_text(new)}"
    old_oneof, new_oneof = _oneof_of(old_msg, old), _oneof_of(new_msg, new)
    if old_oneof != new_oneof:
        yield f"{where}: {name} oneof changed from {_oneof_text(old_oneof)} to {_oneof_text(new_oneof)}"
    if old.proto3_optional != new.proto3_optional:
        change = "added" if new.proto3_optional else "removed"
        yield f"{where}: {name} explicit presence (proto3 optional) {change}"


def _compare_enum_values(where: str, old: EnumProto, new: EnumProto) -> Iterator[str]:
    for v, same_slot, same_name in _counterparts(old.value, new.value):
        if same_name is not None:
            if same_name.number != v.number:
                yield f'{where}: value "{v.name}" renumbered from {v.number} to {same_name.number}'
            continue
        if same_slot is not None:
            yield f'{where}: value {v.number} renamed from "{v.name}" to "{same_slot.name}"'
        else:
            yield f'{where}: value {v.number} "{v.name}" removed'


def _compare_methods(where: str, old: ServiceProto, new: ServiceProto) -> Iterator[str]:
    current = {m.name: m for m in new.method}
    for m in old.method:
        cur = current.get(m.name)
        rpc = f"rpc {m.name}"
        if cur is None:
            yield f"{where}: {rpc} removed"
            continue
        for what, a, b in (
            ("input type", m.input_type.lstrip("."), cur.input_type.lstrip(".")),
            ("output type", m.output_type.lstrip("."), cur.output_type.lstrip(".")),
            ("client streaming", str(m.client_streaming).lower(), str(cur.client_streaming).lower()),
            ("server streaming", str(m.server_streaming).lower(), str(cur.server_streaming).lower()),
        ):
            if a != b:
                yield f"{where}: {rpc} {what} changed from {a} to {b}"


def _compare_extension(where: str, old: FieldProto, new: FieldProto) -> Iterator[str]:
    if old.number != new.number:
        yield f"{where}: number changed from {old.number} to {new.number}"
    if old.extendee != new.extendee:
        yield f"{where}: extendee changed from {old.extendee.lstrip('.')} to {new.extendee.lstrip('.')}"
    if _type_text(old) != _type_text(new):
        yield f"{where}: type changed from {_type_text(old)} to {_type_text(new)}"
    if old.label != new.label:
        yield f"{where}: label changed from {_label_text(old)} to {_label_text(new)}"


def find_breaking_changes(baseline: Index, current: Index) -> list[str]:
    """Every breaking change from `baseline` to `current`, one line each, in a stable order."""
    out: list[str] = []
    for name, file in sorted(baseline.files.items()):
        cur_file = current.files.get(name)
        if cur_file is None:
            out.append(f"{name}: file removed")
        elif cur_file.package != file.package:
            out.append(f"{name}: package changed from {file.package} to {cur_file.package}")

    def is_map_entry(msg: MessageProto) -> bool:
        # A map's entry type disappears with its field, which is reported already.
        return msg.options.map_entry

    out += _removed_or_moved("message", baseline.messages, current.messages, _message_shape, is_map_entry)
    out += _removed_or_moved("enum", baseline.enums, current.enums, _enum_shape)
    out += _removed_or_moved("service", baseline.services, current.services, _service_shape)
    out += _removed_or_moved("extension", baseline.extensions, current.extensions, None)

    out += _changed("message", baseline.messages, current.messages, _compare_fields)
    out += _changed("enum", baseline.enums, current.enums, _compare_enum_values)
    out += _changed("service", baseline.services, current.services, _compare_methods)
    out += _changed("extension", baseline.extensions, current.extensions, _compare_extension)
    return out


def load_descriptor_set(path: str) -> descriptor_pb2.FileDescriptorSet:
    """Reads a serialized FileDescriptorSet, raising UsageError on any problem."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from err
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(data)
    except DecodeError as err:
        raise UsageError(f"{path} is not a serialized FileDescriptorSet: {err}") from err
    if not fds.file or any(not f.name for f in fds.file):
        raise UsageError(f"{path} is not a serialized FileDescriptorSet: no named files in it")
    return fds


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="proto_breaking", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="committed FileDescriptorSet (.pb)")
    parser.add_argument("--current", required=True, help="FileDescriptorSet of the working tree (.pb)")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PREFIX",
        help="skip files whose name starts with PREFIX (repeatable), e.g. google/protobuf/",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the check; returns the exit status (0 ok, 1 breaking changes, 2 usage/input error)."""
    try:
        args = _parse_args(sys.argv[1:] if argv is None else argv)
        baseline = build_index(load_descriptor_set(args.baseline), args.exclude)
        current = build_index(load_descriptor_set(args.current), args.exclude)
    except UsageError as err:
        print(f"proto_breaking: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    problems = find_breaking_changes(baseline, current)
    for line in problems:
        print(line)
    if problems:
        print(
            f"proto_breaking: {len(problems)} breaking change(s) against {args.baseline}; "
            "if intended, update the baseline (see proto/README.md)",
            file=sys.stderr,
        )
        return 1
    print(f"proto_breaking: no breaking changes ({len(baseline.files)} files compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
