"""Static checks of user strategy code, run on save and again inside the sandbox before loading.

The checks are one layer of several (see sandbox.py): they exist to give the trader a precise,
early error ("line 4: import of 'os' is not allowed") and to refuse the well-known escape
patterns before any code runs. The runtime guards in loader.py repeat the attribute and import
rules, because static checks alone can be fooled; both read them from policy.py.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from core.strategies.compiler import compile_strategy
from core.strategies.policy import (  # noqa: F401 - ALLOWED_MODULES, CONTRACT_NAMES: re-exported for assistant.py
    ALLOWED_MODULES,
    CONTRACT_NAMES,
    DENIED_EXCEPT_ON_SELF,
    NAME_DISPATCH_METHODS,
    attribute_refusal,
    function_name_refusal,
    import_refusal,
    module_member_refusal,
    window_type_refusal,
)

MAX_CODE_CHARS = 100_000

FORBIDDEN_NAMES = {
    "exec": "exec() runs arbitrary code",
    "eval": "eval() runs arbitrary code",
    "compile": "compile() creates code objects",
    "open": "strategies have no file access",
    "globals": "globals() exposes the interpreter namespace",
    "locals": "locals() exposes the interpreter namespace",
    "vars": "vars() exposes object internals",
    "getattr": "use plain attribute access (obj.name) instead of getattr()",
    "setattr": "use plain attribute assignment instead of setattr()",
    "delattr": "delattr() is not available",
    "hasattr": "hasattr() is not available",
    "dir": "dir() is not available",
    "type": "type() is not available; use isinstance()",
    "object": "the object type is not available",
    "input": "strategies have no console",
    "print": "print() output goes nowhere in a sandboxed strategy",
    "breakpoint": "breakpoint() is not available",
    "help": "help() is not available",
    "memoryview": "memoryview() is not available",
    "exit": "exit() is not available",
    "quit": "quit() is not available",
    "builtins": "the builtins module is not available",
}

_MODULE_LEVEL_STATEMENTS = (
    ast.Import,
    ast.ImportFrom,
    ast.ClassDef,
    ast.FunctionDef,
    ast.Assign,
    ast.AnnAssign,
    ast.Pass,
)
_RP_ERROR = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)


@dataclass
class ValidationReport:
    ok: bool
    errors: list[dict[str, Any]] = field(default_factory=list)
    class_name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def first_error(self) -> str:
        if not self.errors:
            return ""
        err = self.errors[0]
        return f"line {err['line']}: {err['message']}"


class StrategyCodeError(Exception):
    """The code is not an acceptable strategy; `.errors` lists {line, col, message}."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        first = errors[0] if errors else {"line": None, "message": "invalid strategy"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"line {first['line']}: {first['message']}{more}")

    @property
    def line(self) -> int | None:
        return self.errors[0]["line"] if self.errors else None


def _function_specs(node: ast.Call, method: str) -> list[ast.expr]:
    """The arguments of a name-dispatching pandas call that say which function to run."""
    specs = [node.args[0]] if node.args and not isinstance(node.args[0], ast.Starred) else []
    specs += [k.value for k in node.keywords if k.arg in ("func", "arg")]
    if method in ("agg", "aggregate") and not specs:  # named aggregation: out=(column, func) or out=func
        for keyword in node.keywords:
            value = keyword.value
            if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                specs.append(value.elts[1])
            elif isinstance(value, ast.Call):  # pd.NamedAgg(column, aggfunc)
                specs += value.args[1:2] + [k.value for k in value.keywords if k.arg == "aggfunc"]
            else:
                specs.append(value)
    return specs


def _function_spec_refusal(spec: ast.expr, method: str) -> str | None:
    if isinstance(spec, ast.Constant) and isinstance(spec.value, str):
        return function_name_refusal(spec.value, method)
    if isinstance(spec, ast.JoinedStr) or (
        isinstance(spec, ast.BinOp)
        and any(
            isinstance(n, (ast.JoinedStr, ast.Constant)) and isinstance(getattr(n, "value", ""), str)
            for n in ast.walk(spec)
        )
    ):
        return f"a function name built from strings is not allowed in .{method}(); pass the function itself"
    if method in ("map", "applymap"):  # containers are lookup tables here, not function names
        return None
    if isinstance(spec, ast.Tuple) and method == "pipe":  # (function, keyword that receives the data)
        return _function_spec_refusal(spec.elts[0], method) if spec.elts else None
    if isinstance(spec, (ast.List, ast.Tuple, ast.Set)):
        items = [e.elts[-1] if isinstance(e, ast.Tuple) and e.elts else e for e in spec.elts]  # (label, func)
    elif isinstance(spec, ast.Dict):
        items = spec.values
    else:
        return None
    return next((why for why in (_function_spec_refusal(i, method) for i in items) if why), None)


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.modules: dict[str, str] = {}  # local name -> dotted path of what an import bound to it

    def refuse(self, node: ast.AST, message: str) -> None:
        self.errors.append(
            {"line": getattr(node, "lineno", 1), "col": getattr(node, "col_offset", 0), "message": message}
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            why = import_refusal(alias.name, None)
            if why:
                self.refuse(node, why)
            local = alias.asname or alias.name.split(".")[0]
            self.modules[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.refuse(node, "relative imports are not allowed")
            return
        names = [a.name for a in node.names]
        if "*" in names:
            self.refuse(node, "'import *' is not allowed; import the names you use")
            return
        why = import_refusal(node.module or "", names)
        if why:
            self.refuse(node, why)
        for alias in node.names:
            self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def module_path(self, node: ast.expr) -> str | None:
        """'numpy.random' for `np.random` after `import numpy as np`; None when not rooted at an import."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.module_path(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in NAME_DISPATCH_METHODS:
            for spec in _function_specs(node, func.attr):
                why = _function_spec_refusal(spec, func.attr)
                if why:
                    self.refuse(spec, why)
        if isinstance(func, ast.Attribute) and func.attr == "rolling":
            for value in node.args[3:4] + [k.value for k in node.keywords if k.arg == "win_type"]:
                why = None
                if isinstance(value, ast.Constant):
                    why = window_type_refusal(value.value)
                elif isinstance(value, (ast.JoinedStr, ast.BinOp)):
                    why = "win_type must be a window name written out, not built from strings"
                if why:
                    self.refuse(value, why)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.refuse(node, f"'{node.id}' is not allowed: {FORBIDDEN_NAMES[node.id]}")
        elif node.id.startswith("__"):
            self.refuse(node, f"'{node.id}' is not allowed (dunder names are private)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.module_path(node.value)
        why = attribute_refusal(node.attr) or (module_member_refusal(path, node.attr) if path else None)
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        if not why and node.attr in DENIED_EXCEPT_ON_SELF and not on_self:
            why = f"attribute '{node.attr}' is not allowed (pandas plotting and styling are not available)"
        if why:
            self.refuse(node, why)
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.refuse(node, "async functions are not allowed in strategies")

    def visit_Global(self, node: ast.Global) -> None:
        self.refuse(node, "'global' is not allowed; keep state on self")


def _module_level_errors(tree: ast.Module) -> list[dict[str, Any]]:
    errors = []
    for stmt in tree.body:
        is_docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if not (isinstance(stmt, _MODULE_LEVEL_STATEMENTS) or is_docstring):
            errors.append(
                {
                    "line": stmt.lineno,
                    "col": stmt.col_offset,
                    "message": "only imports, classes, functions and constants are allowed at module level "
                    "(code here would run when the strategy is loaded)",
                }
            )
    return errors


def _is_strategy_class(node: ast.stmt) -> TypeGuard[ast.ClassDef]:
    return isinstance(node, ast.ClassDef) and any(
        isinstance(base, ast.Name) and base.id == "Strategy" for base in node.bases
    )


def _json_type_error(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} must be a finite number, not {value}"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            err = _json_type_error(item, f"{where}[{i}]")
            if err:
                return err
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} keys must be strings, not {key!r}"
            err = _json_type_error(item, f"{where}[{key!r}]")
            if err:
                return err
        return None
    return f"{where} must be a number, string, boolean, list or dict, not {type(value).__name__}"


def _params_of(cls: ast.ClassDef) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    for stmt in cls.body:
        if not (
            isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "params" for t in stmt.targets)
        ):
            continue
        where = {"line": stmt.lineno, "col": stmt.col_offset}
        try:
            value = ast.literal_eval(stmt.value)
        except (ValueError, SyntaxError, TypeError):
            return {}, [{**where, "message": 'params must be a literal dict such as {"fast": 10}'}]
        if not isinstance(value, dict):
            return {}, [{**where, "message": f"params must be a dict, not {type(value).__name__}"}]
        err = _json_type_error(value, "params")
        if err:
            return {}, [{**where, "message": err}]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}, []
    return {}, []


def _restricted_python_errors(code: str) -> list[dict[str, Any]]:
    try:
        result = compile_strategy(code)
    except SyntaxError as exc:  # RestrictedPython's rewritten tree can fail to compile on its own
        return [{"line": exc.lineno or 1, "col": 0, "message": f"syntax error: {exc.msg}"}]
    errors = []
    for text in result.errors:
        match = _RP_ERROR.match(text)
        if match:
            errors.append({"line": int(match.group(1)), "col": 0, "message": match.group(2)})
        else:
            errors.append({"line": 1, "col": 0, "message": text})
    return errors


def validate_strategy_code(code: str) -> ValidationReport:
    """Syntax, allow-list, exactly one Strategy subclass, literal JSON-typed params."""
    if not isinstance(code, str):
        return ValidationReport(ok=False, errors=[{"line": 1, "col": 0, "message": "code must be text"}])
    if len(code) > MAX_CODE_CHARS:
        message = f"strategy is too long ({len(code)} characters, at most {MAX_CODE_CHARS})"
        return ValidationReport(ok=False, errors=[{"line": 1, "col": 0, "message": message}])
    try:
        return _validate(code)
    except RecursionError:
        return ValidationReport(ok=False, errors=[{"line": 1, "col": 0, "message": "the code is nested too deeply"}])


def _validate(code: str) -> ValidationReport:
    try:
        tree = ast.parse(code, filename="<strategy>")
        # The compiler finds errors the parser lets through (e.g. a bare starred expression).
        compile(tree, "<strategy>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        message = f"syntax error: {exc.msg}"
        return ValidationReport(
            ok=False, errors=[{"line": exc.lineno or 1, "col": max((exc.offset or 1) - 1, 0), "message": message}]
        )
    except ValueError as exc:  # e.g. NUL bytes in the source
        return ValidationReport(ok=False, errors=[{"line": 1, "col": 0, "message": f"invalid source: {exc}"}])

    checker = _Checker()
    checker.visit(tree)
    errors = checker.errors + _module_level_errors(tree)

    classes = [node for node in tree.body if _is_strategy_class(node)]
    class_name: str | None = None
    params: dict[str, Any] = {}
    if not classes:
        errors.append({"line": 1, "col": 0, "message": "no strategy found: define one class that subclasses Strategy"})
    elif len(classes) > 1:
        names = ", ".join(c.name for c in classes)
        errors.append(
            {"line": classes[1].lineno, "col": 0, "message": f"exactly one Strategy subclass is allowed, found {names}"}
        )
    else:
        class_name = classes[0].name
        params, param_errors = _params_of(classes[0])
        errors += param_errors

    seen = {(e["line"], e["message"]) for e in errors}
    known_lines = {e["line"] for e in errors}
    for err in _restricted_python_errors(code):
        # RestrictedPython repeats several of our findings in its own words; keep one per line.
        if err["line"] not in known_lines and (err["line"], err["message"]) not in seen:
            errors.append(err)

    errors.sort(key=lambda e: (e["line"], e["col"]))
    return ValidationReport(ok=not errors, errors=errors, class_name=class_name, params=params)
