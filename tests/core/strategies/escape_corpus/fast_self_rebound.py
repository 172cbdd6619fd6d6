# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: rebind self to a module inside a strategy method, hoping self.name stays unguarded
# stage: runtime
# where: init
# expect: ForbiddenOperation
self = pandas
raise ValueError(str(self.core))
