# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: run code at class creation through a custom metaclass
# stage: refused
# where: module
# expect: StrategyCodeError
class Meta(type):
    pass


class Sneaky(metaclass=Meta):
    pass
