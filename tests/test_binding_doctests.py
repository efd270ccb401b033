"""The binding's docstring examples run, and the public door re-exports every module.

Each module of trilink_native (one per C header, see binding's docstring) shows
its calls as doctests; they are run here, so an example that no longer holds
fails the suite instead of misleading a reader.
"""
import doctest
import importlib

import numpy as np
import pytest

from trilink_native import binding

MODULES = ("trilink_native", "trilink_native.binding") + tuple("trilink_native." + m for m in binding.MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert res.attempted > 0, f"{name} shows no example"
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} fail (see the output above)"


@pytest.mark.parametrize("name", binding.MODULES)
def test_the_door_reexports_every_public_name(name):
    mod = importlib.import_module("trilink_native." + name)
    own = [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", mod.__name__) == mod.__name__
           and not isinstance(v, type(np)) and n != "annotations"]
    helpers = {"_arrays": None, "_errors": {"Codes", "check", "WIRE", "COBS", "CODEC", "FUSION", "FUSION_BATCH",
                                            "PICTURE", "ASSIGN", "TERRITORY", "PICTURE_NAMES"}}
    skip = helpers.get(name, set())
    if skip is None:
        return   # array helpers are the binding's own, not the door's
    missing = [n for n in own if n not in skip and not hasattr(binding, n)]
    assert not missing, f"trilink_native.{name} defines {missing} but binding does not export them"
