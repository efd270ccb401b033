"""THE NUMPY REFERENCE of the C kernel's math: readable, slow, for tests and
benchmarks only. The relay never imports this package at run time.

Each module mirrors one part of ``native/c``: geometry and motion
(``motion``), association, covariance intersection and the track picture
(``fusion``).
"""
