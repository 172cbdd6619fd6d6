# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: burn CPU in one C-level operation that cannot be interrupted from Python
# stage: runtime
# where: init
# expect: Timeout,CpuTimeLimit,MemoryLimit
value = 7 ** (10**9)
