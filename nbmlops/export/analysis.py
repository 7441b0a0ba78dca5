"""Which code makes the model: cell roles, parameters, the model, and a def/use slice.

Steps (each one small and testable):

1. **Statements.** Every code cell is translated to plain Python (:mod:`.translate`) and
   split into top-level statements with their def/use facts (:mod:`.names`). Cells tagged
   ``mlops:skip`` or ``mlops:infer`` take no further part; a cell that does not parse is
   dropped with its syntax error.
2. **Parameters.** The literal assignments of the cell tagged ``parameters`` (papermill's
   convention) or, without that tag, top-level scalar literal assignments made once and
   never changed (hyper-parameters, seeds, paths).
3. **The model.** The variable fitted last with ``X, y`` (``model.fit(X, y)`` or
   ``model = ...fit(X, y)``); a cell tagged ``mlops:train`` narrows the choice, and
   ``model=`` overrides it. Its fit arguments name the training data; the first
   ``model.predict(X)`` after it names the held-out data.
4. **The slice.** Backwards from the criteria — the model's fit, its evaluation (a
   ``sklearn.metrics`` call on the model's predictions, ``model.score``, explicit
   ``nbmlops.log_*`` calls), seeds and global configuration before the fit, and every
   non-display statement of cells tagged ``mlops:features/train/evaluate`` — a statement is
   kept when it binds or changes a name a kept statement after it reads. Display-only
   statements (plots, ``df.head()``, bare expressions, ``print``) are never kept by
   dependency; everything not kept is dropped with a reason.
5. **Stages.** Kept statements before the fit go to ``load`` (data and features; in
   ``features.py``) unless they only build the model (``train``); the fit is ``train``;
   statements after it are ``evaluate`` (both in ``train.py``). Functions and classes move to
   ``features.py``; a function that reads notebook variables gets them as keyword-only
   parameters, passed explicitly at every call site.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

from nbmlops.errors import InvalidArgument
from nbmlops.export.names import BUILTINS, facts_of, function_free_names
from nbmlops.export.reader import NotebookSource, SourceCell
from nbmlops.export.translate import translate_cell

__all__ = [
    "Analysis",
    "ExportError",
    "FunctionInfo",
    "MetricSite",
    "ParamSpec",
    "Statement",
    "analyze",
]

ROLE_TAGS = {
    "parameters": "parameters",
    "mlops:features": "features",
    "mlops:train": "train",
    "mlops:evaluate": "evaluate",
    "mlops:infer": "infer",
    "mlops:skip": "skip",
}
FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
_SEED_FUNCTIONS = {"seed", "manual_seed", "set_seed", "set_random_seed", "seed_everything"}
_LOG_FUNCTIONS = {
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "log_input",
}
_REGISTRY_FUNCTIONS = {
    "log_model",
    "register_model",
    "promote",
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "transition_model_version_stage",
    "register_run",
}
_DISPLAY_MODULES = {
    "matplotlib",
    "seaborn",
    "plotly",
    "altair",
    "bokeh",
    "IPython",
    "missingno",
    "ydata_profiling",
    "pandas_profiling",
    "sweetviz",
    "yellowbrick",
}
_PLOT_METHODS = {"plot", "hist", "boxplot", "kde", "density", "bar", "barh", "scatter", "pie"}
_AGGREGATES = {
    "mean",
    "median",
    "std",
    "var",
    "sum",
    "min",
    "max",
    "quantile",
    "rank",
    "cumsum",
    "cumprod",
    "transform",
    "groupby",
    "value_counts",
    "shift",
    "diff",
    "rolling",
    "expanding",
    "ewm",
    "fit",
    "fit_transform",
    "sample",
    "qcut",
    "nunique",
    "count",
    "mode",
    "pct_change",
}
_EXPERIMENTAL_IMPORT = re.compile(r"(^|\.)(experimental|enable_\w+)($|\.)")


class ExportError(InvalidArgument):
    """The notebook cannot be exported as asked (no model found, unknown --model, ...)."""


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One exported parameter: name, type (int, float, bool, str, list, dict, json) and
    its default value from the notebook."""

    name: str
    type: str
    default: Any
    cell: str


@dataclasses.dataclass
class Statement:
    """One top-level statement of a cell, with its def/use facts and what became of it."""

    index: int
    cell: int
    text: str
    node: ast.stmt
    kind: str  # import, def, class, param, code
    binds: frozenset[str]
    changes: frozenset[str]
    reads: frozenset[str]
    calls: frozenset[str]
    refs: frozenset[str]
    writes: frozenset[str] = frozenset()
    reads_files: frozenset[str] = frozenset()
    display: bool = False
    plot: bool = False
    seed: bool = False
    config: bool = False
    log: bool = False
    registry: bool = False
    stage: str | None = None  # load, train, evaluate (code); features (defs); params
    reason: str | None = None  # why it was dropped
    criterion: str | None = None  # why it was kept on its own

    @property
    def first_line(self) -> str:
        lines = [
            line
            for line in self.text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        return lines[0].strip() if lines else self.text.strip().splitlines()[0]


@dataclasses.dataclass
class FunctionInfo:
    """A function or class defined in the notebook."""

    name: str
    statement: Statement
    free: set[str]
    globals: list[str] = dataclasses.field(default_factory=list)
    is_class: bool = False


@dataclasses.dataclass(frozen=True)
class MetricSite:
    """A metric call on the model's output in an evaluation statement.

    ``key`` is the metric name notebook autologging gives it (``f1_score_X_test``); for
    ``model.score(X, y)`` it is ``<class>_score_X`` with the class known only at run time,
    so ``score_of`` names the model variable and ``key`` the part after the class name.
    """

    statement: int
    node: ast.Call
    key: str
    score_of: str | None = None


@dataclasses.dataclass
class CellInfo:
    """One cell's translation and fate."""

    cell: SourceCell
    role: str = ""
    role_source: str = "inferred"  # tag or inferred
    modules: list[str] = dataclasses.field(default_factory=list)
    reason: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    statements: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Analysis:
    """Everything the code generator needs (see the module docstring)."""

    source: NotebookSource
    cells: list[CellInfo]
    statements: list[Statement]
    params: list[ParamSpec]
    params_tagged: bool
    functions: dict[str, FunctionInfo]
    imports: list[Statement]
    import_names: dict[str, str]  # bound name -> module path
    model: str
    fit_index: int
    x_train: str | None
    y_train: str | None
    holdout: str | None
    model_candidates: list[str]
    metric_sites: list[MetricSite]
    features_frame: str | None = None
    features_statements: list[int] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    task: str = "unknown"

    def kept(self, stage: str) -> list[Statement]:
        """Kept code statements of ``stage`` (load, train, evaluate), in order."""
        return [s for s in self.statements if s.kind == "code" and s.stage == stage]

    @property
    def used_functions(self) -> list[FunctionInfo]:
        return [f for f in self.functions.values() if f.statement.stage == "features"]


# --------------------------------------------------------------------------- helpers


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "json"


def _json_ready(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def _split_statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Top-level statements of ``code`` with their text; comment lines before a statement
    belong to it (trailing comments of the cell to the last statement)."""
    tree = ast.parse(code)
    lines = code.splitlines()
    pieces = []
    start = 0
    for position, node in enumerate(tree.body):
        last = (node.end_lineno or node.lineno) - 1
        if position == len(tree.body) - 1:
            last = len(lines) - 1
        text_lines = lines[start : last + 1]
        while text_lines and not text_lines[0].strip():
            text_lines.pop(0)
        while text_lines and not text_lines[-1].strip():
            text_lines.pop()
        text = "\n".join(text_lines) + "\n"
        pieces.append((text, ast.parse(text).body[0]))
        start = last + 1
    return pieces


def _attribute_chain(node: ast.AST) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return list(reversed(parts))


# --------------------------------------------------------------------------- the analysis


class _Analyzer:
    def __init__(
        self,
        source: NotebookSource,
        model: str | None,
        run_cell_sha: str | None,
    ) -> None:
        self.source = source
        self.requested_model = model
        self.run_cell_sha = run_cell_sha
        self.cells: list[CellInfo] = [CellInfo(cell=c) for c in source.cells]
        self.statements: list[Statement] = []
        self.warnings: list[str] = []
        self.import_names: dict[str, str] = {}
        self.display_names: set[str] = set()
        self.metric_names: dict[str, str] = {}  # local name -> sklearn.metrics function
        self.metric_modules: set[str] = set()  # names bound to sklearn.metrics
        self.nbmlops_names: set[str] = set()

    # ----------------------------------------------------------------- 1. statements
    def read_statements(self) -> None:
        for position, info in enumerate(self.cells):
            cell = info.cell
            role_tags = [ROLE_TAGS[t] for t in cell.tags if t in ROLE_TAGS]
            if role_tags:
                info.role = role_tags[0]
                info.role_source = "tag"
                if len(set(role_tags)) > 1:
                    info.warnings.append(
                        f"{cell.label} has several role tags ({', '.join(role_tags)}); "
                        f"using {role_tags[0]!r}"
                    )
            if info.role in ("skip", "infer"):
                info.reason = (
                    "tagged mlops:skip"
                    if info.role == "skip"
                    else "tagged mlops:infer (inference is infer.py's job)"
                )
                continue
            if not cell.source.strip():
                info.role, info.reason = "empty", "empty cell"
                continue
            try:
                translation = translate_cell(cell.source)
                pieces = _split_statements(translation.code)
            except SyntaxError as exc:
                info.role = "dropped"
                info.reason = f"not valid Python (line {exc.lineno}: {exc.msg})"
                info.warnings.append(f"{cell.label} dropped: {info.reason}")
                continue
            info.notes.extend(translation.notes)
            info.warnings.extend(f"{cell.label}: {w}" for w in translation.warnings)
            if translation.magic_only or not pieces:
                info.role = info.role or "magic"
                info.reason = "IPython magics or shell commands only"
                continue
            for text, node in pieces:
                self._add_statement(position, text, node)

    def _add_statement(self, cell: int, text: str, node: ast.stmt) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kind = "import"
            self._learn_import(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kind = "def"
        elif isinstance(node, ast.ClassDef):
            kind = "class"
        else:
            kind = "code"
        statement = Statement(
            index=len(self.statements),
            cell=cell,
            text=text,
            node=node,
            kind=kind,
            binds=frozenset(),
            changes=frozenset(),
            reads=frozenset(),
            calls=frozenset(),
            refs=frozenset(),
        )
        self.statements.append(statement)
        self.cells[cell].statements.append(statement.index)

    def _learn_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".", 1)[0]
                module = alias.name if alias.asname else alias.name.split(".", 1)[0]
                self.import_names[bound] = module
                if alias.name.split(".", 1)[0] in _DISPLAY_MODULES:
                    self.display_names.add(bound)
                if alias.name == "sklearn.metrics" and alias.asname:
                    self.metric_modules.add(alias.asname)
                if alias.name.split(".", 1)[0] == "nbmlops" and (
                    alias.asname or alias.name == "nbmlops"
                ):
                    self.nbmlops_names.add(bound)
            return
        module = node.module or ""
        for alias in node.names:
            if alias.name == "*":
                continue
            bound = alias.asname or alias.name
            self.import_names[bound] = f"{module}.{alias.name}" if module else alias.name
            if module.split(".", 1)[0] in _DISPLAY_MODULES or alias.name.endswith("Display"):
                self.display_names.add(bound)
            if module == "sklearn.metrics" or module.startswith("sklearn.metrics."):
                self.metric_names[bound] = alias.name
            if module == "sklearn" and alias.name == "metrics":
                self.metric_modules.add(bound)
            if (module == "nbmlops" or module.startswith("nbmlops.")) and (
                alias.name in _LOG_FUNCTIONS or alias.name in _REGISTRY_FUNCTIONS
            ):
                self.nbmlops_names.add(bound)

    # ----------------------------------------------------------------- classification
    def compute_facts(self) -> None:
        """Def/use facts of every statement (knowing the notebook's own functions)."""
        local = frozenset(
            s.node.name  # type: ignore[attr-defined]
            for s in self.statements
            if s.kind in ("def", "class")
        )
        for statement in self.statements:
            facts = facts_of(statement.node, local)
            statement.binds = facts.binds
            statement.changes = facts.changes
            statement.reads = facts.reads
            statement.calls = facts.calls
            statement.refs = facts.refs
            statement.writes = facts.writes
            statement.reads_files = facts.reads_files

    def classify(self) -> None:
        self.compute_facts()
        imports = set(self.import_names)
        for statement in self.statements:
            if statement.kind != "code":
                continue
            node = statement.node
            module_changes = statement.changes & imports
            if module_changes:
                statement.changes = statement.changes - imports
            statement.plot = self._involves_display(node)
            if isinstance(node, ast.Expr):
                statement.display = self._display_safe(node.value)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and statement.plot:
                value = node.value
                statement.display = value is not None and self._display_safe(value)
            elif isinstance(node, (ast.For, ast.With)) and statement.plot:
                statement.display = all(
                    (isinstance(s, ast.Expr) and self._display_safe(s.value))
                    or (isinstance(s, ast.Assign) and self._display_safe(s.value))
                    for s in node.body
                )
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                chain = _attribute_chain(call.func)
                if not chain:
                    continue
                if chain[-1] in _SEED_FUNCTIONS:
                    statement.seed = True
                if chain[0] in self.nbmlops_names or (
                    len(chain) == 1 and chain[0] in self.nbmlops_names
                ):
                    if chain[-1] in _LOG_FUNCTIONS:
                        statement.log = True
                    if chain[-1] in _REGISTRY_FUNCTIONS:
                        statement.registry = True
                elif chain[-1] in _REGISTRY_FUNCTIONS and len(chain) > 1:
                    statement.registry = True
            if (
                module_changes
                and not statement.binds
                and not statement.display
                and not statement.log
                and isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign))
            ):
                statement.config = True  # e.g. sklearn.set_config(...), os.environ[...] = ...
            if isinstance(node, ast.Expr) and statement.seed:
                statement.config = True

    def _involves_display(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.display_names:
                return True
            if (
                isinstance(sub, ast.Call)
                and isinstance(sub.func, ast.Attribute)
                and (sub.func.attr in _PLOT_METHODS or sub.func.attr.startswith("plot_"))
            ):
                return True
        return False

    def _display_safe(self, node: ast.AST) -> bool:
        """Whether evaluating ``node`` only shows something (no binding, no change)."""
        from nbmlops.export.names import _DISPLAY_BUILTINS, PURE_METHODS

        for sub in ast.walk(node):
            if isinstance(sub, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await)):
                return False
            if not isinstance(sub, ast.Call):
                continue
            if any(
                k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in sub.keywords
            ):
                return False
            chain = _attribute_chain(sub.func)
            if chain and chain[0] in self.display_names:
                continue
            if isinstance(sub.func, ast.Name):
                if sub.func.id in _DISPLAY_BUILTINS or sub.func.id in self.display_names:
                    continue
                return False
            if isinstance(sub.func, ast.Attribute):
                if sub.func.attr in PURE_METHODS or sub.func.attr in _PLOT_METHODS:
                    if sub.func.attr in ("fit", "fit_transform"):
                        return False
                    continue
                if sub.func.attr.startswith(("plot_", "show", "set_", "from_")) and (
                    chain and chain[0] in self.display_names
                ):
                    continue
                return False
            return False
        return True

    # ----------------------------------------------------------------- 2. parameters
    def find_params(self) -> tuple[list[ParamSpec], bool]:
        tagged = [i for i, c in enumerate(self.cells) if c.role == "parameters"]
        binds_count: dict[str, int] = {}
        changed: set[str] = set()
        for statement in self.statements:
            for name in statement.binds | statement.changes:
                binds_count[name] = binds_count.get(name, 0) + 1
            changed |= statement.changes
        specs: list[ParamSpec] = []
        seen: set[str] = set()
        for statement in self.statements:
            if statement.kind != "code":
                continue
            in_tagged = statement.cell in tagged
            if tagged and not in_tagged:
                continue
            target, value_node = _simple_assignment(statement.node)
            if target is None or value_node is None:
                if in_tagged and statement.kind == "code":
                    self.cells[statement.cell].warnings.append(
                        f"{self.cells[statement.cell].cell.label} (parameters): "
                        f"`{statement.first_line}` is not a literal assignment; it stays code"
                    )
                continue
            ok, value = _literal(value_node)
            if not ok:
                if in_tagged:
                    self.cells[statement.cell].warnings.append(
                        f"{self.cells[statement.cell].cell.label} (parameters): {target} is not "
                        "a literal; it stays code"
                    )
                continue
            if not in_tagged and (
                not isinstance(value, (int, float, str, bool))
                or target.startswith("_")
                or binds_count.get(target, 0) != 1
                or target in changed
                or (isinstance(value, str) and len(value) > 500)
            ):
                continue
            if target in seen:
                # A tagged cell assigning twice: the last value wins, as in the notebook.
                specs = [s for s in specs if s.name != target]
            seen.add(target)
            statement.kind = "param"
            statement.stage = "params"
            specs.append(
                ParamSpec(
                    name=target,
                    type=_type_name(value),
                    default=_json_ready(value),
                    cell=self.cells[statement.cell].cell.label,
                )
            )
        return specs, bool(tagged)

    # ----------------------------------------------------------------- functions
    def find_functions(self, param_names: set[str]) -> dict[str, FunctionInfo]:
        functions: dict[str, FunctionInfo] = {}
        variables: set[str] = set(param_names)
        for statement in self.statements:
            if statement.kind == "code":
                variables |= statement.binds | statement.changes
        for statement in self.statements:
            if statement.kind not in ("def", "class"):
                continue
            node = statement.node
            assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if node.name in functions:
                self.warnings.append(
                    f"{node.name} is defined more than once; the last definition is exported"
                )
            functions[node.name] = FunctionInfo(
                name=node.name,
                statement=statement,
                free=function_free_names(node),
                is_class=statement.kind == "class",
            )
        defined = set(functions)
        for info in functions.values():
            own = sorted((info.free & variables) - defined - (set(self.import_names) - variables))
            info.globals = own
        changed = True
        while changed:  # callers need what their callees need
            changed = False
            for info in functions.values():
                for callee in info.free & defined:
                    if callee == info.name:
                        continue
                    extra = [g for g in functions[callee].globals if g not in info.globals]
                    if extra and not info.is_class:
                        info.globals = sorted(set(info.globals) | set(extra))
                        changed = True
        for info in functions.values():
            if info.is_class and info.globals:
                self.warnings.append(
                    f"class {info.name} reads notebook variables {', '.join(info.globals)}; "
                    "classes cannot receive them as parameters — pass them to the constructor"
                )
                info.globals = []
            node = info.statement.node
            if not info.is_class and any(isinstance(n, ast.Global) for n in ast.walk(node)):
                self.warnings.append(
                    f"function {info.name} assigns notebook variables with `global`; that "
                    "does not carry over to the exported package"
                )
        return functions

    # ----------------------------------------------------------------- 3. the model
    def find_model(self) -> tuple[str, int, ast.Call | None, list[str]]:
        fits: list[tuple[str, int, ast.Call, bool]] = []
        for statement in self.statements:
            if statement.kind != "code":
                continue
            for variable, call in _fit_calls(statement.node):
                supervised = len(call.args) >= 2 or any(k.arg == "y" for k in call.keywords)
                fits.append((variable, statement.index, call, supervised))
        candidates = list(dict.fromkeys(f[0] for f in fits if f[3])) or list(
            dict.fromkeys(f[0] for f in fits)
        )
        if self.requested_model is not None:
            name = self.requested_model
            own = [f for f in fits if f[0] == name]
            if own:
                return name, own[-1][1], own[-1][2], candidates
            touching = [
                s.index
                for s in self.statements
                if s.kind == "code" and (name in s.binds or name in s.changes)
            ]
            if not touching:
                raise ExportError(
                    f"--model {name}: no cell binds or fits a variable named {name!r} "
                    f"(fitted models: {', '.join(candidates) or 'none'})"
                )
            return name, touching[-1], None, candidates
        if not fits:
            raise ExportError(
                f"no model found in {self.source.described}: no cell calls .fit(X, y) on a "
                "variable. Tag the training cell `mlops:train`, or name the model variable "
                "(--model VAR)"
            )
        pool = [f for f in fits if f[3]] or fits
        if self.run_cell_sha is not None:
            run_cells = {
                i for i, c in enumerate(self.cells) if c.cell.code_sha256 == self.run_cell_sha
            }
            in_run = [f for f in pool if self.statements[f[1]].cell in run_cells]
            if in_run:
                pool = in_run
        tagged = [f for f in pool if self.cells[self.statements[f[1]].cell].role == "train"]
        if tagged:
            pool = tagged
        variable = pool[-1][0]
        own = [f for f in fits if f[0] == variable]
        return variable, own[-1][1], own[-1][2], candidates

    # ----------------------------------------------------------------- 4. the slice
    def metric_sites(self, model: str, after: int) -> tuple[list[MetricSite], str | None]:
        sites: list[MetricSite] = []
        predictions: dict[str, str] = {}  # variable holding model output -> X name
        holdout: str | None = None
        from nbmlops.autolog.sklearn import METRIC_FUNCTIONS, UNKNOWN_DATASET

        def x_name_of(node: ast.AST | None) -> str | None:
            if isinstance(node, ast.Subscript):
                node = node.value
            if isinstance(node, ast.Name):
                return predictions.get(node.id)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in PREDICT_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == model
            ):
                arg = node.args[0] if node.args else None
                if arg is None:
                    arg = next((k.value for k in node.keywords if k.arg in ("X", "x")), None)
                if isinstance(arg, ast.Name) and not arg.id.startswith("_"):
                    return arg.id
                return UNKNOWN_DATASET
            return None

        for statement in self.statements[after + 1 :]:
            if statement.kind != "code" or self.cells[statement.cell].role in ("skip", "infer"):
                continue
            node = statement.node
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                name = self._metric_function(call)
                if name is not None and name in METRIC_FUNCTIONS:
                    argument = _prediction_argument(call)
                    x_name = x_name_of(argument)
                    if x_name is not None:
                        sites.append(MetricSite(statement.index, call, f"{name}_{x_name}"))
                        if holdout is None and x_name != UNKNOWN_DATASET:
                            holdout = x_name
                    continue
                if (
                    isinstance(call.func, ast.Attribute)
                    and call.func.attr == "score"
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == model
                    and call.args
                ):
                    arg = call.args[0]
                    x_name = (
                        arg.id
                        if isinstance(arg, ast.Name) and not arg.id.startswith("_")
                        else UNKNOWN_DATASET
                    )
                    sites.append(
                        MetricSite(statement.index, call, f"_score_{x_name}", score_of=model)
                    )
                    if holdout is None and x_name != UNKNOWN_DATASET:
                        holdout = x_name
                if holdout is None:
                    found = x_name_of(call)
                    if found is not None and found != UNKNOWN_DATASET:
                        holdout = found
            if isinstance(node, ast.Assign):
                produced = x_name_of(node.value)
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        if produced is not None:
                            predictions[target.id] = produced
                        else:
                            predictions.pop(target.id, None)
        return sites, holdout

    def _metric_function(self, call: ast.Call) -> str | None:
        func = call.func
        if isinstance(func, ast.Name):
            return self.metric_names.get(func.id)
        chain = _attribute_chain(func)
        if len(chain) == 2 and chain[0] in self.metric_modules:
            return chain[1]
        if (
            len(chain) == 3
            and chain[1] == "metrics"
            and self.import_names.get(chain[0]) == "sklearn"
        ):
            return chain[2]
        return None

    def slice(
        self,
        fit_index: int,
        sites: Sequence[MetricSite],
        functions: dict[str, FunctionInfo],
        params: set[str],
    ) -> None:
        code = [s for s in self.statements if s.kind == "code"]
        site_statements = {s.statement for s in sites}
        for statement in code:
            role = self.cells[statement.cell].role
            if statement.registry:
                continue
            if statement.index == fit_index:
                statement.criterion = "fits the model"
            elif statement.index in site_statements:
                statement.criterion = "evaluates the model"
            elif statement.log:
                statement.criterion = "logs to the run"
            elif statement.index < fit_index and statement.config:
                statement.criterion = "seeds or configures libraries"
            elif role in ("features", "train", "evaluate") and not statement.display:
                statement.criterion = f"in a cell tagged mlops:{role}"
        uses = {s.index: self._uses(s, functions) for s in code}
        live: set[str] = set()
        for statement in reversed(code):
            keep = statement.criterion is not None
            if not keep and not statement.display and not statement.registry:
                written = {f"file:{p}" for p in statement.writes}
                keep = bool((statement.binds | statement.changes | written) & live)
            if not keep:
                continue
            statement.stage = "kept"
            live -= statement.binds
            live |= uses[statement.index]
        self.live_at_start = live

    def _uses(self, statement: Statement, functions: dict[str, FunctionInfo]) -> set[str]:
        uses = set(statement.reads) | set(statement.changes)
        for name in statement.reads & set(functions):
            uses |= set(functions[name].globals)
            uses.add(name)
        uses |= {f"file:{p}" for p in statement.reads_files}
        return uses

    def needed_functions(self, functions: dict[str, FunctionInfo]) -> None:
        kept_code = [s for s in self.statements if s.kind == "code" and s.stage == "kept"]
        wanted = set().union(*(s.reads | s.calls for s in kept_code)) if kept_code else set()
        queue = [n for n in wanted if n in functions]
        seen: set[str] = set()
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            seen.add(name)
            node = functions[name].statement.node
            inner = functions[name].free | facts_of(node).reads
            queue.extend(n for n in inner if n in functions and n not in seen)
        for name, info in functions.items():
            if name in seen:
                info.statement.stage = "features"
            else:
                info.statement.reason = f"dead code: {'class' if info.is_class else 'function'} {name} is never used by the exported code"


def _simple_assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return node.target.id, node.value
    return None, None


def _fit_calls(node: ast.stmt) -> Iterable[tuple[str, ast.Call]]:
    """(model variable, fit call) pairs in a statement."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr in FIT_METHODS
            and isinstance(sub.func.value, ast.Name)
        ):
            yield sub.func.value.id, sub
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "fit"
        and not isinstance(node.value.func.value, ast.Name)
    ):
        yield node.targets[0].id, node.value


def _prediction_argument(call: ast.Call) -> ast.expr | None:
    from nbmlops.autolog.sklearn import PREDICTION_ARGUMENTS

    for keyword in call.keywords:
        if keyword.arg in PREDICTION_ARGUMENTS:
            return keyword.value
    if len(call.args) > 1:
        return call.args[1]
    return None


def _fit_data(call: ast.Call | None) -> tuple[str | None, str | None, set[str]]:
    """Training X and y variable names (when plain names) and the names the fit's data
    arguments read."""
    if call is None:
        return None, None, set()
    x_node = (
        call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "X"), None)
    )
    y_node = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "y"), None)
    )
    data_names: set[str] = set()
    for node in [*call.args, *(k.value for k in call.keywords)]:
        data_names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    x_name = x_node.id if isinstance(x_node, ast.Name) else None
    y_name = y_node.id if isinstance(y_node, ast.Name) else None
    return x_name, y_name, data_names


def _backward(
    statements: Sequence[Statement], roots: set[str], uses: dict[int, set[str]]
) -> set[int]:
    live = set(roots)
    found: set[int] = set()
    for statement in reversed(statements):
        if (statement.binds | statement.changes) & live:
            found.add(statement.index)
            live -= statement.binds
            live |= uses[statement.index]
    return found


def analyze(
    source: NotebookSource,
    model: str | None = None,
    run_cell_sha: str | None = None,
) -> Analysis:
    """Analyse the cells of ``source`` (see the module docstring).

    Args:
        source: the cells to export (a notebook, or a run's execution history).
        model: the model variable to export (default: the last one fitted with X and y).
        run_cell_sha: code sha256 of the cell whose run is being rebuilt (``--from-run``):
            the model is the one that cell fitted.

    Raises:
        ExportError: no model can be found, or ``model`` names no variable.
    """
    analyzer = _Analyzer(source, model, run_cell_sha)
    analyzer.read_statements()
    analyzer.classify()
    params, tagged = analyzer.find_params()
    param_names = {p.name for p in params}
    functions = analyzer.find_functions(param_names)
    model_name, fit_index, fit_call, candidates = analyzer.find_model()
    sites, holdout = analyzer.metric_sites(model_name, fit_index)
    analyzer.slice(fit_index, sites, functions, param_names)
    analyzer.needed_functions(functions)
    statements = analyzer.statements
    x_train, y_train, data_names = _fit_data(fit_call)

    # Parameters: tagged ones are all kept; inferred ones only when the kept code uses them.
    needed: set[str] = set()
    for statement in statements:
        if statement.stage in ("kept", "features"):
            needed |= statement.reads | statement.changes
            if statement.kind in ("def", "class"):
                needed |= set(functions[statement.node.name].globals)  # type: ignore[attr-defined]
    if not tagged:
        unused = {p.name for p in params} - needed
        for statement in statements:
            if statement.kind == "param":
                target, _ = _simple_assignment(statement.node)
                if target in unused:
                    statement.kind = "code"
                    statement.stage = None
                    statement.reason = (
                        f"dead code: defines {target} (never used by the model or its evaluation)"
                    )
        params = [p for p in params if p.name not in unused]

    # Stages.
    code = [s for s in statements if s.kind == "code" and s.stage == "kept"]
    uses = {s.index: analyzer._uses(s, functions) for s in code}
    before = [s for s in code if s.index < fit_index]
    model_roots = {model_name}
    data_slice = _backward(before, data_names, uses)
    model_slice = _backward(before, model_roots, uses)
    for statement in code:
        if statement.index == fit_index:
            statement.stage = "train"
        elif statement.index > fit_index:
            statement.stage = "evaluate"
        elif statement.index in model_slice and statement.index not in data_slice:
            statement.stage = "train"
        else:
            statement.stage = "load"
    # A load statement must not read what a (moved) train statement binds.
    train_binds = set()
    for statement in code:
        if statement.stage == "train" and statement.index != fit_index:
            train_binds |= statement.binds | statement.changes
        elif statement.stage == "load" and uses[statement.index] & train_binds:
            for other in code:
                if other.stage == "train" and other.index != fit_index:
                    other.stage = "load"
            break
    # Tagged evaluate cells before the fit cannot evaluate: say so.
    for statement in code:
        info = analyzer.cells[statement.cell]
        if info.role == "evaluate" and statement.index < fit_index:
            analyzer.warnings.append(
                f"{info.cell.label} is tagged mlops:evaluate but comes before the model is "
                "fitted; it is exported as data preparation"
            )
            break

    # Reasons for what was dropped.
    others = set(candidates) - {model_name}
    for statement in statements:
        if statement.kind != "code" or statement.stage is not None or statement.reason:
            continue
        statement.reason = _drop_reason(statement, fit_index, model_name, others)

    analysis = Analysis(
        source=source,
        cells=analyzer.cells,
        statements=statements,
        params=params,
        params_tagged=tagged,
        functions=functions,
        imports=[s for s in statements if s.kind == "import"],
        import_names=analyzer.import_names,
        model=model_name,
        fit_index=fit_index,
        x_train=x_train,
        y_train=y_train,
        holdout=holdout or x_train,
        model_candidates=candidates,
        metric_sites=sites,
        warnings=analyzer.warnings,
    )
    if holdout is None:
        analysis.warnings.append(
            f"no evaluation of {model_name} found after its fit (a sklearn.metrics call on "
            f"{model_name}.predict(...), or {model_name}.score(...)); only training metrics "
            "are compared"
        )
    if fit_call is not None and (x_train is None or y_train is None):
        analysis.warnings.append(
            f"{model_name} is fitted on expressions rather than variables; training metrics, "
            "data fingerprints and --max-train-rows need `fit(X_train, y_train)` with names"
        )
    if fit_call is None:
        analysis.warnings.append(
            f"{model_name} is not fitted with `.fit(...)` at the top level of a cell; training "
            "metrics and data fingerprints are not recomputed"
        )
    _find_feature_statements(analysis)
    _warn_unseeded(analysis)
    _finish_cells(analysis)
    unresolved = _unresolved_names(analysis)
    for name, where in sorted(unresolved.items()):
        analysis.warnings.append(
            f"{name} is read by the exported code ({where}) but defined nowhere in it (a "
            "skipped cell, a magic, or a variable from outside the notebook)"
        )
    return analysis


#: Callables that draw random numbers unless given ``random_state`` (scikit-learn's own
#: randomness falls back to numpy's global RNG, which a global seed call fixes).
_RANDOMIZED = re.compile(
    r"^(train_test_split|(Stratified)?(Group)?(Shuffle|K)(Fold|Split)|RandomForest\w*|"
    r"ExtraTrees\w*|GradientBoosting\w*|HistGradientBoosting\w*|DecisionTree\w*|"
    r"ExtraTree\w*|MLP\w*|SGD\w*|KMeans|MiniBatchKMeans|Bagging\w*|AdaBoost\w*|"
    r"RandomizedSearchCV|IsolationForest|TSNE|TruncatedSVD|LogisticRegression|"
    r"Perceptron|LinearSVC|make_classification|make_regression|make_blobs)$"
)


def _warn_unseeded(analysis: Analysis) -> None:
    """Warn about kept code whose randomness has no seed: it cannot be reproduced."""
    seeded = False
    for statement in analysis.statements:
        if statement.kind != "code" or statement.stage not in ("load", "train", "evaluate"):
            continue
        if statement.seed and statement.index < analysis.fit_index:
            seeded = True
        if seeded:
            continue
        for call in (n for n in ast.walk(statement.node) if isinstance(n, ast.Call)):
            chain = _attribute_chain(call.func)
            name = chain[-1] if chain else ""
            if not _RANDOMIZED.match(name) or any(k.arg == "random_state" for k in call.keywords):
                continue
            if name == "LogisticRegression" and not any(
                k.arg == "solver"
                and isinstance(k.value, ast.Constant)
                and k.value.value in ("sag", "saga", "liblinear")
                for k in call.keywords
            ):
                continue  # the default solver is deterministic
            if name.endswith(("KFold", "Fold")) and not any(
                k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in call.keywords
            ):
                continue
            label = analysis.cells[statement.cell].cell.label
            analysis.warnings.append(
                f"{label}: {name}(...) has no random_state and no global seed is set; the "
                "exported training cannot reproduce the notebook's numbers"
            )


def _drop_reason(statement: Statement, fit_index: int, model: str, others: set[str]) -> str:
    if statement.registry:
        return "registry step (train.py --register does this)"
    other = sorted((statement.reads | statement.binds | statement.changes) & others)
    if other and model not in statement.reads:
        return f"works with another model ({', '.join(other)}), not the exported {model!r}"
    predicts = any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in PREDICT_METHODS
        and _attribute_chain(n.func)[:1] == [model]
        for n in ast.walk(statement.node)
    )
    if statement.index > fit_index and predicts:
        return "inference after training (infer.py serves predictions)"
    if statement.display:
        return "display-only (plot)" if statement.plot else "display-only"
    names = sorted(statement.binds | statement.changes)
    if names:
        shown = ", ".join(names[:4]) + ("…" if len(names) > 4 else "")
        return f"dead code: defines {shown} (never used by the model or its evaluation)"
    if statement.index > fit_index:
        return "not needed for training or evaluation"
    return "no effect on the model (nothing it binds is used)"


def _find_feature_statements(analysis: Analysis) -> None:
    """Row-wise new-column statements on the training frame -> ``build_features(df)``.

    A load statement ``FRAME["new"] = <expression of FRAME's columns>`` (or
    ``FRAME = FRAME.assign(new=...)``) that adds a column not read before, uses no
    dataset-level statistic (mean, std, fit, groupby, ...), and feeds the model's training
    data, is applied to raw rows at inference too. The candidates must be contiguous uses of
    the frame; otherwise nothing is extracted (and the report says why).
    """
    load = analysis.kept("load")
    if not load or analysis.x_train is None:
        return
    target_strings: set[str] = set()
    for statement in load:
        if analysis.y_train and analysis.y_train in statement.binds:
            target_strings |= {
                n.value
                for n in ast.walk(statement.node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
    by_frame: dict[str, list[Statement]] = {}
    read_columns: dict[str, set[str]] = {}
    for statement in load:
        frame, column, expression = _new_column(statement.node)
        if frame is not None and column is not None and expression is not None:
            reads = {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}
            seen = read_columns.get(frame, set()) | _columns_read(expression, frame)
            aggregates = any(
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in _AGGREGATES
                for n in ast.walk(expression)
            )
            allowed = (
                {frame}
                | set(analysis.import_names)
                | {p.name for p in analysis.params}
                | set(analysis.functions)
                | BUILTINS
            )
            if (
                column not in seen
                and column not in target_strings
                and not aggregates
                and reads <= allowed
            ):
                by_frame.setdefault(frame, []).append(statement)
                continue
            if aggregates:
                analysis.warnings.append(
                    f"`{statement.first_line}` derives a feature from a dataset-level statistic; "
                    "it stays in load_data and is not recomputed at inference (put it in the "
                    "model pipeline to avoid training-serving skew)"
                )
        for name in {n.id for n in ast.walk(statement.node) if isinstance(n, ast.Name)}:
            read_columns.setdefault(name, set()).update(_columns_read(statement.node, name))
    if not by_frame:
        return
    frame, candidates = max(by_frame.items(), key=lambda item: len(item[1]))
    first, last = candidates[0].index, candidates[-1].index
    chosen = {s.index for s in candidates}
    between = [s for s in load if first < s.index < last and s.index not in chosen]
    if any(frame in (s.reads | s.binds | s.changes) for s in between):
        analysis.warnings.append(
            f"feature columns of {frame} are interleaved with other uses of it; build_features "
            "is left empty (tag a cell mlops:features with only the row-wise feature code)"
        )
        return
    analysis.features_frame = frame
    analysis.features_statements = sorted(chosen)


def _columns_read(node: ast.AST, frame: str) -> set[str]:
    """Column names ``node`` reads from ``frame`` (``frame["a"]``, ``frame.a``)."""
    columns = set()
    for sub in ast.walk(node):
        if not isinstance(sub, (ast.Subscript, ast.Attribute)):
            continue
        if not (isinstance(sub.value, ast.Name) and sub.value.id == frame):
            continue
        if isinstance(sub, ast.Attribute):
            columns.add(sub.attr)
        elif isinstance(sub.slice, ast.Constant) and isinstance(sub.slice.value, str):
            columns.add(sub.slice.value)
    return columns


def _new_column(node: ast.stmt) -> tuple[str | None, str | None, ast.expr | None]:
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Subscript)
        and isinstance(node.targets[0].value, ast.Name)
        and isinstance(node.targets[0].slice, ast.Constant)
        and isinstance(node.targets[0].slice.value, str)
    ):
        return node.targets[0].value.id, node.targets[0].slice.value, node.value
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "assign"
        and isinstance(node.value.func.value, ast.Name)
        and node.value.func.value.id == node.targets[0].id
        and len(node.value.keywords) == 1
        and node.value.keywords[0].arg
        and not node.value.args
    ):
        keyword = node.value.keywords[0]
        return node.targets[0].id, keyword.arg, keyword.value
    return None, None, None


def _finish_cells(analysis: Analysis) -> None:
    modules = {
        "load": "features.py",
        "train": "train.py",
        "evaluate": "train.py",
        "features": "features.py",
        "params": "params.py",
    }
    roles = {
        "load": "features",
        "train": "train",
        "evaluate": "evaluate",
        "features": "features",
        "params": "parameters",
    }
    for info in analysis.cells:
        statements = [analysis.statements[i] for i in info.statements]
        if info.reason and not statements:
            continue
        kept = [s for s in statements if s.stage in modules]
        imports_only = statements and all(s.kind == "import" for s in statements)
        if imports_only:
            info.role = info.role or "imports"
            info.modules = ["(imports, where used)"]
            continue
        if not kept:
            reasons = sorted({s.reason or "" for s in statements if s.kind != "import"})
            if not info.role or info.role_source == "inferred":
                if all(r.startswith("display") for r in reasons):
                    info.role = "display"
                elif all(r.startswith("inference") for r in reasons):
                    info.role = "infer"
                elif all(r.startswith("dead code") for r in reasons):
                    info.role = "dead"
                else:
                    info.role = "dropped"
            info.reason = "; ".join(r for r in reasons if r) or "nothing the model needs"
            continue
        stage_roles = list(dict.fromkeys(roles[s.stage] for s in kept if s.stage))
        if info.role_source != "tag":
            info.role = "+".join(stage_roles)
        info.modules = list(dict.fromkeys(modules[s.stage] for s in kept if s.stage))
        dropped = [s for s in statements if s.stage is None and s.kind == "code"]
        if dropped:
            info.reason = "; ".join(f"dropped `{s.first_line}`: {s.reason}" for s in dropped)


def _unresolved_names(analysis: Analysis) -> dict[str, str]:
    available = set(BUILTINS) | set(analysis.import_names) | set(analysis.functions)
    available |= {p.name for p in analysis.params}
    unresolved: dict[str, str] = {}
    for statement in analysis.statements:
        if statement.kind == "code" and statement.stage in ("load", "train", "evaluate"):
            for name in statement.reads - available:
                if not name.startswith("file:"):
                    unresolved.setdefault(name, analysis.cells[statement.cell].cell.label)
            available |= statement.binds | statement.changes
    available_defs = available | {
        n for s in analysis.statements if s.kind == "code" for n in s.binds | s.changes
    }
    for info in analysis.used_functions:
        for name in info.free - available_defs - set(info.globals):
            unresolved.setdefault(name, f"function {info.name}")
    unresolved.pop("display", None)
    return unresolved
