"""YAML documents as the project reads them: PyYAML's safe loader, except that a key given twice in one
mapping is an error. PyYAML keeps the last value without a word, so a second ``name:`` in a profile
silently renamed it, and a second ``customs_value:`` in a mapping silently chose another column."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the safe loader's own error says so below
            continue
        if first is not None:
            raise ConstructorError("while reading a mapping", node.start_mark,
                                   f"found the key {key!r} a second time (first on line {first})",
                                   key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, refusing a key given twice in a mapping (a ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
