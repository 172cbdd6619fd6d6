# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: monkeypatch an allowed module shared with the platform code in the same process
# stage: runtime
# where: init
# expect: ForbiddenOperation
math.isfinite = lambda value: True
