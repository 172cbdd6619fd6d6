# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read and write arbitrary memory with numpy's as_strided
# stage: refused
# where: init
# expect: ForbiddenOperation
from numpy.lib.stride_tricks import as_strided

as_strided(numpy.zeros(1), shape=(10**9,), strides=(8,))
