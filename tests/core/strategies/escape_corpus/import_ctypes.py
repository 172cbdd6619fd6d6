# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: call libc through ctypes
# stage: refused
# where: init
# expect: ForbiddenOperation
import ctypes

ctypes.CDLL(None).system(b"touch @MARKER@")
