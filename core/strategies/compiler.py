"""The restricted compiler of strategy code: RestrictedPython's rewrite, widened to ordinary Python.

RestrictedPython refuses annotated assignment (the fields of a dataclass) and augmented assignment
of attributes and items (`self.streak += 1`, `self.counts[side] += 1`). The code runs in the sandbox
child (namespaces, rlimits, audit hook), so they need no refusal: they are rewritten into calls of
guards that read through the same checks as a plain read (`_getattr_` / `_getitem_`) and write
through `_write_`, exactly as `a.b = a.b + c` would. Augmented assignment of a slice (`a[1:3] += x`)
stays refused, with a plain reason.

Speed: in a method of the Strategy subclass whose `self` is never rebound, `self.name` is compiled to
a plain attribute access (no `_getattr_` / `_write_` call per read and write). The method starts with
`_self_check_(self)`, which refuses to run it on anything but a strategy instance; on one, the guard
had nothing to refuse: the attribute name was checked at compile time (no `_`, no refused name), the
holder is not a module, frame or array, and the values on a strategy are the runtime's (data, params,
position) or ones user code already held when it stored them.
"""

from __future__ import annotations

import ast
from typing import Any

from RestrictedPython.compile import CompileResult, syntax_error_template
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

from core.strategies.phase_timer import STRATEGY_FILENAME

INPLACE_ATTRIBUTE_GUARD = "_inplace_attr_"
INPLACE_ITEM_GUARD = "_inplace_item_"
SELF_CHECK_GUARD = "_self_check_"
SELF = "self"


def _has_slice(node: ast.expr) -> bool:
    return isinstance(node, ast.Slice) or (isinstance(node, ast.Tuple) and any(_has_slice(e) for e in node.elts))


def _rebinds_self(method: ast.FunctionDef) -> bool:
    """True when anything in `method` other than its first parameter binds or unbinds the name `self`."""
    own = method.args.posonlyargs[:1] or method.args.args[:1]
    for node in ast.walk(method):
        if isinstance(node, ast.Name) and node.id == SELF and not isinstance(node.ctx, ast.Load):
            return True
        if isinstance(node, ast.arg) and node.arg == SELF and not (own and node is own[0]):
            return True
        if isinstance(node, (ast.Global, ast.Nonlocal)) and SELF in node.names:
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == SELF:
            return True
        name = getattr(node, "name", None)
        if name == SELF and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
            return True
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == SELF:
            return True
        if isinstance(node, ast.MatchMapping) and node.rest == SELF:
            return True
    return False


def _is_fast_method(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return False
    first = (node.args.posonlyargs or node.args.args)[:1]
    return bool(first) and first[0].arg == SELF and not _rebinds_self(node)


def _is_strategy_class(node: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id == "Strategy" for base in node.bases)


class StrategyTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus `obj.name op= value`, `obj[key] op= value` and plain `self.name`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast_methods: set[int] = set()
        self._in_fast_method = False

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        if _is_strategy_class(node):
            self._fast_methods.update(id(stmt) for stmt in node.body if _is_fast_method(stmt))
        return super().visit_ClassDef(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        if id(node) not in self._fast_methods or self._in_fast_method:
            return super().visit_FunctionDef(node)
        self._in_fast_method = True
        try:
            visited = super().visit_FunctionDef(node)
        finally:
            self._in_fast_method = False
        assert visited is node  # RestrictedPython visits a function definition in place
        check = ast.Expr(
            value=ast.Call(func=ast.Name(SELF_CHECK_GUARD, ast.Load()), args=[ast.Name(SELF, ast.Load())], keywords=[])
        )
        copy_locations(check, node.body[0])
        node.body.insert(0, ast.fix_missing_locations(check))
        return node

    def _on_self(self, node: ast.AST) -> bool:
        return self._in_fast_method and isinstance(node, ast.Name) and node.id == SELF

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if not self._on_self(node.value):
            return super().visit_Attribute(node)
        new_node = super().visit_Attribute(node)  # the name checks and errors of RestrictedPython
        if isinstance(new_node, ast.Call):  # _getattr_(self, "name") -> self.name
            return node
        if isinstance(new_node, ast.Attribute) and isinstance(new_node.value, ast.Call):  # _write_(self).name
            new_node.value = new_node.value.args[0]
        return new_node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        """`name: type = value` (dataclass fields): the target, annotation and value are guarded as usual."""
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Name):
            return super().visit_AugAssign(node)
        if isinstance(target, ast.Attribute) and self._on_self(target.value):
            return self.node_contents_visit(node)  # self.name op= value, as Python runs it
        if isinstance(target, ast.Subscript) and _has_slice(target.slice):
            self.error(node, "augmented assignment of a slice is not allowed; write a[i:j] = a[i:j] + x")
            return node
        # Visiting the target as a store checks the attribute name and wraps its holder in _write_().
        node = self.node_contents_visit(node)
        target = node.target
        assert isinstance(target, (ast.Attribute, ast.Subscript))  # the grammar allows no other target here
        operator = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        if isinstance(target, ast.Attribute):
            call = ast.Call(
                func=ast.Name(INPLACE_ATTRIBUTE_GUARD, ast.Load()),
                args=[target.value, ast.Constant(target.attr), operator, node.value],
                keywords=[],
            )
        else:
            call = ast.Call(
                func=ast.Name(INPLACE_ITEM_GUARD, ast.Load()),
                args=[target.value, target.slice, operator, node.value],
                keywords=[],
            )
        new_node = ast.Expr(value=call)
        copy_locations(new_node, node)
        return ast.fix_missing_locations(new_node)


def compile_strategy(code: str) -> CompileResult:
    """Restricted-compile strategy source (errors in RestrictedPython's 'Line N: message' form).

    RestrictedPython's own compile_restricted_exec compiles with the future flags of its module, so
    every annotation of user code would become a string (and dataclasses would look for the user's
    module in sys.modules); this compiles with none.
    """
    errors: list[str] = []
    warnings: list[str] = []
    used_names: dict[str, bool] = {}
    try:
        tree = ast.parse(code, STRATEGY_FILENAME, "exec")
    except SyntaxError as exc:
        text = exc.text.strip() if exc.text else None
        errors.append(syntax_error_template.format(lineno=exc.lineno, type="SyntaxError", msg=exc.msg, statement=text))
        return CompileResult(None, tuple(errors), warnings, used_names)
    StrategyTransformer(errors, warnings, used_names).visit(tree)
    byte_code = None if errors else compile(tree, STRATEGY_FILENAME, "exec", dont_inherit=True)
    return CompileResult(byte_code, tuple(errors), warnings, used_names)
