# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: issue 13 step 2: through sys.modules, rebind the builtins the child's audit hook calls (any, bool) in its module globals
# stage: refused
# where: init
# expect: ForbiddenOperation
child = statistics.sys.modules["core.strategies.sandbox_child"]
child.any = lambda *args: True
child.bool = lambda *args: False
