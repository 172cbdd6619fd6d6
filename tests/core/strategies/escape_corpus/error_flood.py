# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: flood the platform with a 200 MB error message
# stage: runtime
# where: init
# expect: ValueError,MemoryLimit
raise ValueError("x" * (200 * 1024 * 1024))
