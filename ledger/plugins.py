"""Packages whose modules are their entries: adding a module adds a channel kind, a provider
or a projection."""

import importlib
import pkgutil
from collections.abc import Iterator


def module_attributes(package_name: str, package_path: list[str], attribute: str) -> Iterator[object]:
    """The `attribute` of every public module of the package that has one."""
    for module_info in pkgutil.iter_modules(package_path):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{module_info.name}")
        if hasattr(module, attribute):
            yield getattr(module, attribute)
