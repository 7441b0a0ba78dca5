"""Def/use facts of Python statements: which names a statement binds, changes and reads.

Scope-aware (function bodies, lambdas, comprehensions and class bodies are their own
scopes), conservative where Python cannot be known statically: a method call on a
variable changes it unless the method is known not to (``df.head()``, ``model.predict``),
and a bare call statement may change the variables passed to it (``add_features(df)``).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses

__all__ = ["BUILTINS", "PURE_METHODS", "StatementFacts", "facts_of", "function_free_names"]

BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__"}

#: Methods that return a value without changing their receiver (pandas, numpy, sklearn,
#: Python containers and strings). A call to any other method counts as a change.
PURE_METHODS = frozenset(
    [
        "head",
        "tail",
        "describe",
        "info",
        "copy",
        "drop",
        "assign",
        "astype",
        "rename",
        "merge",
        "join",
        "groupby",
        "agg",
        "aggregate",
        "mean",
        "sum",
        "min",
        "max",
        "std",
        "var",
        "median",
        "mode",
        "count",
        "value_counts",
        "unique",
        "nunique",
        "isna",
        "isnull",
        "notna",
        "notnull",
        "fillna",
        "dropna",
        "reset_index",
        "set_index",
        "sort_values",
        "sort_index",
        "query",
        "eval",
        "apply",
        "applymap",
        "map",
        "pipe",
        "select_dtypes",
        "to_numpy",
        "to_dict",
        "to_list",
        "tolist",
        "to_frame",
        "reshape",
        "round",
        "clip",
        "corr",
        "cov",
        "quantile",
        "sample",
        "filter",
        "where",
        "mask",
        "replace",
        "between",
        "isin",
        "any",
        "all",
        "abs",
        "cumsum",
        "cumprod",
        "diff",
        "shift",
        "pct_change",
        "rank",
        "nlargest",
        "nsmallest",
        "idxmax",
        "idxmin",
        "melt",
        "pivot",
        "pivot_table",
        "stack",
        "unstack",
        "explode",
        "transpose",
        "get_dummies",
        "combine_first",
        "align",
        "reindex",
        "interpolate",
        "duplicated",
        "drop_duplicates",
        "memory_usage",
        "iterrows",
        "itertuples",
        "items",
        "keys",
        "values",
        "get",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "transform",
        "inverse_transform",
        "score",
        "get_params",
        "get_feature_names_out",
        "split",
        "rsplit",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "title",
        "format",
        "startswith",
        "endswith",
        "encode",
        "decode",
        "ravel",
        "flatten",
        "dot",
        "argmax",
        "argmin",
        "argsort",
        "item",
        "nonzero",
        "squeeze",
        "astype",
        "view",
        "concat",
        "cut",
        "qcut",
        "to_datetime",
        "to_numeric",
        "select",
        "rolling",
        "expanding",
        "ewm",
        "resample",
        "loc",
        "iloc",
        "at",
        "iat",
        "str",
        "dt",
        "cat",
        "plot",
        "hist",
        "boxplot",
        "kde",
        "density",
        "bar",
        "barh",
        "scatter",
        "line",
        "area",
        "pie",
        "hexbin",
        "show",
    ]
)
#: Methods that write files; they change no variable.
OUTPUT_METHODS = frozenset(
    [
        "to_csv",
        "to_parquet",
        "to_json",
        "to_excel",
        "to_pickle",
        "to_feather",
        "to_hdf",
        "to_sql",
        "to_html",
        "to_latex",
        "to_markdown",
        "to_string",
        "savefig",
        "save",
        "dump",
        "write_text",
        "write_bytes",
    ]
)
#: Functions that read files (a literal path argument links them to the writer).
READ_FUNCTIONS = frozenset(
    [
        "read_csv",
        "read_parquet",
        "read_json",
        "read_excel",
        "read_pickle",
        "read_feather",
        "read_hdf",
        "read_table",
        "read_fwf",
        "load",
        "loadtxt",
        "genfromtxt",
        "open",
        "read_text",
        "read_bytes",
    ]
)
_DISPLAY_BUILTINS = frozenset(
    [
        "print",
        "display",
        "repr",
        "len",
        "type",
        "sorted",
        "list",
        "dict",
        "set",
        "tuple",
        "str",
        "round",
        "min",
        "max",
        "sum",
        "abs",
        "vars",
        "dir",
        "help",
        "isinstance",
        "id",
        "hash",
        "format",
        "HTML",
        "Markdown",
        "Image",
        "pprint",
    ]
)
_SHUFFLING = frozenset({"shuffle", "seed_everything"})


@dataclasses.dataclass(frozen=True)
class StatementFacts:
    """What a statement does to names.

    ``binds``: names (re)bound unconditionally; ``changes``: names changed in place or bound
    only conditionally (a loop body, an ``if``), which keeps the previous value relevant;
    ``reads``: names read (free names of nested scopes included); ``calls``: names called as
    functions; ``refs``: names referenced as values other than as the called function;
    ``writes``/``reads_files``: literal file paths written / read.
    """

    binds: frozenset[str]
    changes: frozenset[str]
    reads: frozenset[str]
    calls: frozenset[str]
    refs: frozenset[str]
    writes: frozenset[str]
    reads_files: frozenset[str]


def _root(node: ast.AST) -> str | None:
    """The variable at the root of ``a.b[c].d(...)``, or None."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return None


def _literal_path(call: ast.Call) -> str | None:
    for arg in [
        *call.args[:1],
        *(
            k.value
            for k in call.keywords
            if k.arg in ("path", "path_or_buf", "filepath_or_buffer", "fname", "file")
        ),
    ]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


class _Collector(ast.NodeVisitor):
    """Names of one scope (nested scopes contribute their free names as reads)."""

    def __init__(
        self, bare_call: bool = False, local_functions: frozenset[str] = frozenset()
    ) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.changed: set[str] = set()
        self.calls: set[str] = set()
        self.refs: set[str] = set()
        self.writes: set[str] = set()
        self.reads_files: set[str] = set()
        self.conditional: set[str] = set()
        self._depth = 0
        self._bare_call = bare_call
        self._local_functions = local_functions
        self._called_names: set[int] = set()

    # ----------------------------------------------------------------- names
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
            if id(node) not in self._called_names:
                self.refs.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.stores.add(node.id)
            if self._depth:
                self.conditional.add(node.id)
        else:
            self.changed.add(node.id)
            self.loads.add(node.id)

    def _target_change(self, node: ast.Attribute | ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root(node.value)
            if root is not None:
                self.changed.add(root)
                self.loads.add(root)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._target_change(node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._target_change(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
            self.changed.add(node.target.id)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            self.calls.add(func.id)
            self._called_names.add(id(func))
            if func.id in READ_FUNCTIONS:
                path = _literal_path(node)
                if path:
                    self.reads_files.add(path)
            local = func.id in self._local_functions
            if func.id not in _DISPLAY_BUILTINS and (
                (self._bare_call and local) or func.id in _SHUFFLING
            ):
                for arg in node.args:
                    if isinstance(arg, ast.Name):
                        self.changed.add(arg.id)
        elif isinstance(func, ast.Attribute):
            method = func.attr
            root = _root(func.value)
            inplace = any(
                k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            if method in OUTPUT_METHODS:
                path = _literal_path(node)
                if path:
                    self.writes.add(path)
            elif method in READ_FUNCTIONS:
                path = _literal_path(node)
                if path:
                    self.reads_files.add(path)
            elif root is not None and (inplace or method not in PURE_METHODS):
                self.changed.add(root)
            if method in _SHUFFLING:
                for arg in node.args:
                    if isinstance(arg, ast.Name):
                        self.changed.add(arg.id)
        bare, self._bare_call = self._bare_call, False
        self.generic_visit(node)
        self._bare_call = bare

    # ----------------------------------------------------------------- control flow
    def _conditional_block(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_For = visit_AsyncFor = visit_While = visit_If = _conditional_block
    visit_Try = visit_With = visit_AsyncWith = _conditional_block
    visit_Match = _conditional_block

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.stores.add(node.name)
            self.conditional.add(node.name)
        self.generic_visit(node)

    # ----------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.stores.add(alias.asname or alias.name.split(".", 1)[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.stores.add(alias.asname or alias.name)

    # ----------------------------------------------------------------- nested scopes
    def _absorb(self, free: set[str], inner: _Collector) -> None:
        self.loads |= free
        self.refs |= free & inner.refs
        self.calls |= inner.calls
        self.changed |= inner.changed & free
        self.writes |= inner.writes
        self.reads_files |= inner.reads_files

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._visit_arguments(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        free, inner = _function_scope(node)
        self._absorb(free, inner)
        self.stores.add(node.name)
        if self._depth:
            self.conditional.add(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _visit_arguments(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_arguments(node.args)
        free, inner = _function_scope(node)
        self._absorb(free, inner)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for item in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(item)
        inner = _Collector()
        for statement in node.body:
            inner.visit(statement)
        free = (inner.loads | inner.changed) - inner.stores
        self._absorb(free, inner)
        self.stores.add(node.name)

    def _comprehension(self, node: ast.AST, elements: list[ast.AST]) -> None:
        inner = _Collector()
        generators = getattr(node, "generators", [])
        for index, generator in enumerate(generators):
            if index == 0:
                self.visit(generator.iter)  # evaluated in the enclosing scope
            else:
                inner.visit(generator.iter)
            inner.visit(generator.target)
            for condition in generator.ifs:
                inner.visit(condition)
        for element in elements:
            inner.visit(element)
        free = (inner.loads | inner.changed) - inner.stores
        self._absorb(free, inner)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_ListComp

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.stores.add(node.target.id)
        if self._depth:
            self.conditional.add(node.target.id)


def _function_scope(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
) -> tuple[set[str], _Collector]:
    args = node.args
    parameters = {
        a.arg
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if a is not None
    }
    inner = _Collector()
    body = node.body if isinstance(node.body, list) else [node.body]
    declared_global: set[str] = set()
    for statement in body:
        for sub in ast.walk(statement):
            if isinstance(sub, ast.Global):
                declared_global.update(sub.names)
        inner.visit(statement)
    local = (inner.stores | parameters) - declared_global
    free = (inner.loads | inner.changed | (inner.stores & declared_global)) - local
    return free, inner


def function_free_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    """Names a function (or a class, methods included) reads from its module at call time."""
    if isinstance(node, ast.ClassDef):
        inner = _Collector()
        for statement in node.body:
            inner.visit(statement)
        return ((inner.loads | inner.changed) - inner.stores) - BUILTINS
    free, _ = _function_scope(node)
    return free - BUILTINS


def facts_of(node: ast.stmt, local_functions: frozenset[str] = frozenset()) -> StatementFacts:
    """Def/use facts of one top-level statement.

    ``local_functions`` are the notebook's own functions: a bare call statement
    ``f(df)`` of one of them may change ``df`` in place.
    """
    collector = _Collector(
        bare_call=isinstance(node, ast.Expr) and isinstance(node.value, ast.Call),
        local_functions=local_functions,
    )
    collector.visit(node)
    unconditional = collector.stores - collector.conditional
    changes = collector.changed | collector.conditional
    reads = collector.loads | (collector.changed - unconditional)
    return StatementFacts(
        binds=frozenset(unconditional),
        changes=frozenset(changes),
        reads=frozenset(reads - BUILTINS),
        calls=frozenset(collector.calls),
        refs=frozenset(collector.refs - BUILTINS),
        writes=frozenset(collector.writes),
        reads_files=frozenset(collector.reads_files),
    )
