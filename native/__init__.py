"""trilink_native: the relay's C kernel (wire, codec, fusion) and its typed binding.

The binding is one module per C header (``_wire``, ``_codec``, ``_picture``,
...); they are the only Python that touches cffi's ``ffi`` and ``lib``.
Import the typed wrappers from the one public door,
:mod:`trilink_native.binding`::

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
"""
