# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: exhaust the host's memory with a giant list
# stage: runtime
# where: init
# expect: MemoryLimit
hog = [0] * (10**10)
