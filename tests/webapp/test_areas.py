"""The web areas are registered by name: every navigation entry is served, and a missing area module stops the
app at start (an import error naming it) instead of quietly taking its pages away."""

from __future__ import annotations

import subprocess
import sys

from webapp import NAVIGATION


def test_every_navigation_entry_is_served(app):
    assert {endpoint for _, endpoint, _ in NAVIGATION} <= set(app.view_functions)


def test_a_missing_area_module_fails_the_start_with_its_name():
    # `None` in sys.modules makes `webapp.stop` unimportable, as deleting or renaming the file would.
    code = "import sys; sys.modules['webapp.stop'] = None; import webapp"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "webapp/__init__.py" in result.stderr
    assert result.stderr.splitlines()[-1] == "ModuleNotFoundError: import of webapp.stop halted; None in sys.modules"
