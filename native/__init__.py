"""trilink_native: the relay's C kernel (wire, codec, fusion) and its typed binding.

Only :mod:`trilink_native.binding` touches cffi's ``ffi`` and ``lib``;
import the typed wrappers from there::

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
"""
