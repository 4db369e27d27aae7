"""A package's face (its ``__init__``) never hides a submodule behind a function of the same name:
``import cnnlab.transfer.freezing as m`` gives the module, while the public functions stay where
the README shows them (``cnnlab.summary``, ``cnnlab.explain``, ``from cnnlab.transfer import freeze``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types

import cnnlab


def test_every_submodule_is_its_packages_attribute():
    names = [info.name for info in pkgutil.walk_packages(cnnlab.__path__, "cnnlab.") if info.name != "cnnlab.__main__"]
    for name in names:
        importlib.import_module(name)
    hidden = {}
    for name in names:
        parent, _, child = name.rpartition(".")
        attribute = getattr(sys.modules[parent], child)
        if attribute is not sys.modules[name]:
            hidden[name] = type(attribute).__name__
    assert hidden == {}, f"package faces hide these submodules behind other objects: {hidden}"


def test_the_public_functions_stay_where_the_readme_shows_them():
    import cnnlab.analysis.explain as explain_package
    import cnnlab.analysis.summary as summary_module
    from cnnlab.transfer import freeze, frozen_parts, unfreeze

    assert isinstance(summary_module, types.ModuleType) and isinstance(explain_package, types.ModuleType)
    assert cnnlab.summary is summary_module.summary and cnnlab.explain is explain_package.explain
    assert all(callable(f) and not isinstance(f, types.ModuleType) for f in (freeze, frozen_parts, unfreeze))
