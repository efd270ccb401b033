"""Build hook: setuptools reads metadata from pyproject.toml; this file only
hands the one cffi builder (native/build.py) to setuptools, which has no
pyproject key for cffi_modules."""
from setuptools import setup

setup(cffi_modules=["native/build.py:ffibuilder"])
