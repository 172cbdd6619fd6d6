# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: pandas imports a plotting backend by name: any module, before checking it
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.Series([1.0]).plot(backend="core.strategies.sandbox_child")
