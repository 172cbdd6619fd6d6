# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read a secret file with open()
# stage: refused
# where: init
# expect: NameError
raise ValueError(open("@SECRET_FILE@").read())
