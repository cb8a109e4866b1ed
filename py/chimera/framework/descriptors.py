"""Facts about protobuf field descriptors that differ across protobuf versions."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

__all__ = ["is_map", "is_repeated"]


def is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.x; ``label`` before
    if isinstance(flag, bool):
        return flag
    return field.label == FieldDescriptor.LABEL_REPEATED


def is_map(field: FieldDescriptor) -> bool:
    return (
        field.message_type is not None
        and field.message_type.GetOptions().map_entry
        and is_repeated(field)
    )
