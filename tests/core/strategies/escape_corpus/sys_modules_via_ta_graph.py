# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach sys through ta's module graph (ta.utils.pd.io.common.sys) and empty the audit hook's lists
# stage: refused
# where: init
# expect: ForbiddenOperation
modules = ta.utils.pd.io.common.sys.modules
modules["core.strategies.sandbox_child"].any = lambda *args: True
