# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: rewrite the contract class so every strategy's indicator misbehaves
# stage: runtime
# where: init
# expect: ForbiddenOperation
Strategy.indicator = lambda self, *args, **kwargs: None
