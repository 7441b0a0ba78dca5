"""``%mlops`` / ``%%mlops``: argument parsing and display only; every action is one call into
:mod:`nbmlops.autolog` (its Python twin). Bad arguments and refused actions end in a one-line
``UsageError``, never in a traceback from these internals.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from nbmlops.errors import NbMlopsError

MANUAL = """nbmlops notebook magics.

  %mlops autolog on|off [--experiment NAME] [--no-models] [--no-figures]
      Turn cell autologging on/off. On opens the session run (named after the notebook);
      every cell that fits a scikit-learn model, calls a sklearn.metrics scorer on a model's
      output, logs explicitly, or draws a figure while a %mlops start run is open becomes a
      child run. Off ends the session run FINISHED.        e.g.  %mlops autolog on
  %mlops start NAME [--tags k=v ...]
      Open a parent run spanning the following cells.     e.g.  %mlops start feature-sweep
  %mlops end [--status FINISHED|FAILED|KILLED]
      End the innermost parent run.                        e.g.  %mlops end --status FAILED
  %%mlops run [--name NAME] [--tags k=v ...]
      Make this cell a run (nested under the open parent or the session run).
                                                           e.g.  %%mlops run --name baseline
  %%mlops tune --trials N [--timeout S] [--metric M] [--direction maximize|minimize]
               [--storage URL] [--study NAME] [--sampler tpe|random|grid|cmaes]
               [--pruner median|none] [--workers K] [--seed S] [--background] [--no-panel]
      Tune with Optuna: the cell body is the objective (it sees `trial`, calls
      trial.suggest_*, assigns the metric variable M or returns/logs it; trial.report
      enables pruning). Each trial is a child run of a tuning run; a live panel with a
      Stop button; `best_params` (and `tune_result`) are bound afterwards. Ctrl-C stops
      after the running trial. Same --study and --storage resume a study. Python twin:
      nbmlops.tune().                           e.g.  %%mlops tune --trials 30 --metric f1
  %mlops tune --interactive SPACE [--objective NAME] [--study NAME]
      Sliders/dropdowns from the search-space dict SPACE (a variable); each Run click is
      one trial (a nested run) of the same study: the last tuned one, or --study.
      Python twin: nbmlops.tune_interactive().  e.g.  %mlops tune --interactive space
  %mlops param k=v ...      log params into this cell's run    e.g.  %mlops param model=rf depth=5
  %mlops metric k=v ... [--step N]   log metrics              e.g.  %mlops metric f1=0.82 --step 3
  %mlops tag k=v ...        set tags on this cell's run        e.g.  %mlops tag stage=dev
  %mlops status             store location, experiment, session run, open runs, autolog state
  %mlops runs [--last N] [--filter F] [--order-by K] [--experiment E] [--all]
      The runs panel: this notebook's runs as a tree, paged, sortable, filterable, with
      selection and "Compare selected".   e.g.  %mlops runs --filter "metrics.f1 > 0.8"
  %mlops compare RUN [RUN ...] | --last N | --best N --metric M [--lower-is-better]
                 [--minimize K ...] [--maximize K ...] [--experiment E] [--filter F]
      2 to 20 runs side by side: differing params first, best metric per row, metric
      histories, code/data/environment differences. RUN: id, id prefix or name.
                                                           e.g.  %mlops compare --best 3 --metric f1
  %mlops show RUN|last      a run's params, metrics, charts, artifacts, inputs, model, code
  %mlops registry [NAME] [--metric M]
      Registry panel: versions, aliases, metric chart, set challenger / promote / archive,
      audit log.                                           e.g.  %mlops registry churn
  %mlops register RUN_ID|last NAME [--alias ALIAS] [--path PATH]
      Register the model logged in a run (`last`: the newest run of this notebook's
      experiment with a logged model) as the next version of NAME.
                                                  e.g.  %mlops register last churn --alias challenger
  %mlops promote NAME VERSION [--metric M] [--min-delta D] [--lower-is-better] [--alias A] [--force]
      Champion-challenger: VERSION takes @champion (or --alias) only if its source run's
      metric (default f1) beats the champion's by more than D, or if there is no champion
      yet, or with --force; the old champion moves to @previous-champion.
                                                  e.g.  %mlops promote churn 3 --metric f1
  %mlops alias NAME ALIAS VERSION | %mlops alias NAME ALIAS --delete
      Point an alias at a version (or remove it).   e.g.  %mlops alias churn challenger 4
  %mlops models [NAME]      registered models, or the versions of NAME
  %mlops history NAME       the audit log of NAME (alias/stage changes, promotion decisions)
  %mlops export [--out DIR] [--name PKG] [--verify] [--force] [--model VAR]
      Export this notebook (as saved on disk) into a train/infer package; --verify runs the
      exported train.py in a fresh interpreter and compares its metrics with this notebook's
      runs. Python twin: nbmlops.export.export_current_notebook().
                                                  e.g.  %mlops export --out ../churn-pkg --verify
  %mlops help               this text (also: %mlops?)

Python twins: nbmlops.autolog(); nbmlops.autolog.start(), end(), cell_run(), status(), runs_table();
nbmlops.registry.register_run(), nbmlops.promote(), Client.set_registered_model_alias(),
nbmlops.registry.models_table(), nbmlops.registry.history_table();
panels: nbmlops.runs_view(), nbmlops.compare(), nbmlops.show_run(), nbmlops.registry_view().
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so IPython shows a one-line UsageError."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        raise UsageError(message or f"{self.prog}: invalid arguments")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    """Parse ``k=v`` words; quotes around values are removed."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"%mlops {what}: expected key=value, got {item!r}")
        pairs[key] = value
    return pairs


def _build_parser() -> _Parser:
    parser = _Parser(prog="%mlops", add_help=False, description=MANUAL)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    autolog = sub.add_parser("autolog", add_help=False)
    autolog.add_argument("state", choices=["on", "off"])
    autolog.add_argument("--experiment")
    autolog.add_argument("--no-models", action="store_true")
    autolog.add_argument("--no-figures", action="store_true")
    start = sub.add_parser("start", add_help=False)
    start.add_argument("name")
    start.add_argument("--tags", nargs="*", default=[])
    end = sub.add_parser("end", add_help=False)
    end.add_argument(
        "--status", default="FINISHED", type=str.upper, choices=["FINISHED", "FAILED", "KILLED"]
    )
    for name in ("param", "tag"):
        item = sub.add_parser(name, add_help=False)
        item.add_argument("pairs", nargs="+")
    metric = sub.add_parser("metric", add_help=False)
    metric.add_argument("pairs", nargs="+")
    metric.add_argument("--step", type=int)
    sub.add_parser("status", add_help=False)
    runs = sub.add_parser("runs", add_help=False)
    runs.add_argument("--last", type=int)
    runs.add_argument("--filter", default="")
    runs.add_argument("--experiment")
    runs.add_argument("--all", action="store_true")
    runs.add_argument("--order-by", action="append")
    compare = sub.add_parser("compare", add_help=False)
    compare.add_argument("runs", nargs="*")
    compare.add_argument("--last", type=int)
    compare.add_argument("--best", type=int)
    compare.add_argument("--metric")
    compare.add_argument("--lower-is-better", action="store_true", default=None)
    compare.add_argument("--minimize", nargs="+", default=[])
    compare.add_argument("--maximize", nargs="+", default=[])
    compare.add_argument("--experiment")
    compare.add_argument("--filter", default="")
    show = sub.add_parser("show", add_help=False)
    show.add_argument("run")
    registry_panel = sub.add_parser("registry", add_help=False)
    registry_panel.add_argument("name", nargs="?")
    registry_panel.add_argument("--metric")
    register = sub.add_parser("register", add_help=False)
    register.add_argument("run")
    register.add_argument("name")
    register.add_argument("--alias")
    register.add_argument("--path")
    promote = sub.add_parser("promote", add_help=False)
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--metric", default="f1")
    promote.add_argument("--min-delta", type=float, default=0.0)
    promote.add_argument("--lower-is-better", action="store_true")
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--force", action="store_true")
    alias = sub.add_parser("alias", add_help=False)
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.add_argument("--delete", action="store_true")
    models = sub.add_parser("models", add_help=False)
    models.add_argument("name", nargs="?")
    history = sub.add_parser("history", add_help=False)
    history.add_argument("name")
    export = sub.add_parser("export", add_help=False)
    export.add_argument("--out")
    export.add_argument("--name")
    export.add_argument("--verify", action="store_true")
    export.add_argument("--force", action="store_true")
    export.add_argument("--model")
    _add_tune_parser(sub)
    sub.add_parser("help", add_help=False)
    return parser


def _build_cell_parser() -> _Parser:
    parser = _Parser(prog="%%mlops", add_help=False)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", add_help=False)
    run.add_argument("--name")
    run.add_argument("--tags", nargs="*", default=[])
    _add_tune_parser(sub)
    return parser


def _add_tune_parser(sub: Any) -> None:
    """``tune`` arguments, shared by ``%%mlops tune`` and ``%mlops tune --interactive``."""
    tune = sub.add_parser("tune", add_help=False)
    tune.add_argument("--trials", type=int)
    tune.add_argument("--timeout", type=float)
    tune.add_argument("--metric", default="f1")
    tune.add_argument("--direction", default="maximize")
    tune.add_argument("--storage")
    tune.add_argument("--study")
    tune.add_argument("--sampler", choices=["tpe", "random", "grid", "cmaes"])
    tune.add_argument("--pruner", choices=["median", "none"], default="median")
    tune.add_argument("--workers", type=int, default=1)
    tune.add_argument("--jobs", type=int, default=1)
    tune.add_argument("--seed", type=int)
    tune.add_argument("--name")
    tune.add_argument("--background", action="store_true")
    tune.add_argument("--no-panel", action="store_true")
    tune.add_argument("--interactive", metavar="SPACE")
    tune.add_argument("--objective")


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%mlops: cannot parse arguments ({exc})") from None


@magics_class
class MlopsMagics(Magics):
    """The ``%mlops`` line magic and ``%%mlops`` cell magic."""

    @line_magic
    def mlops(self, line: str = "") -> Any:
        args = _build_parser().parse_args(_split(line))
        if args.command in (None, "help"):
            print(MANUAL)
            return None
        try:
            return getattr(self, f"_do_{args.command}")(args)
        except NbMlopsError as exc:
            raise UsageError(f"%mlops {args.command}: {exc}") from None

    mlops.__doc__ = MANUAL

    @cell_magic("mlops")
    def mlops_cell(self, line: str = "", cell: str = "") -> Any:
        args = _build_cell_parser().parse_args(_split(line))
        if args.command == "tune":
            return self._tune_cell(args, cell)
        if args.command != "run":
            raise UsageError(
                "%%mlops: expected `%%mlops run [--name NAME] [--tags k=v ...]` or "
                "`%%mlops tune --trials N ...`"
            )
        from nbmlops import autolog as api

        try:
            api.cell_run(name=args.name, tags=_pairs(args.tags, "run --tags"))
        except NbMlopsError as exc:
            raise UsageError(f"%%mlops run: {exc}") from None
        result = self.shell.run_cell(cell, store_history=False)
        session = api.notebook_session()
        if session is not None and session.cell is not None and result.error_in_exec is not None:
            session.cell.error = result.error_in_exec
        return None

    # ----------------------------------------------------------------- subcommands
    def _do_autolog(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        if args.state == "off":
            api.autolog(enable=False)
            print("nbmlops autolog off (session run finished)")
            return
        run_id = api.autolog(
            experiment=args.experiment,
            log_models=not args.no_models,
            log_figures=not args.no_figures,
        )
        info = api.status()
        print(
            f"nbmlops autolog on · experiment {info['experiment']!r} · session run {run_id} · store {info['store']}"
        )

    def _do_start(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        run_id = api.start(args.name, _pairs(args.tags, "start --tags"))
        print(f"started parent run {args.name!r} ({run_id})")

    def _do_end(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        run_id = api.end(args.status)
        print(f"ended parent run {run_id} ({args.status})")

    def _cell_run_id(self) -> str:
        from nbmlops import autolog as api

        return api.cell_run()

    def _do_param(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in _pairs(args.pairs, "param").items():
            client.log_param(run_id, key, value.strip("'\""))

    def _do_metric(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        values: dict[str, float] = {}
        for key, text in _pairs(args.pairs, "metric").items():
            try:
                values[key] = float(text)
            except ValueError:
                raise UsageError(f"%mlops metric: {key}={text!r} is not a number") from None
        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in values.items():
            client.log_metric(run_id, key, value, step=args.step)

    def _do_tag(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in _pairs(args.pairs, "tag").items():
            client.set_tag(run_id, key, value.strip("'\""))

    def _do_status(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        for key, value in api.status().items():
            print(f"{key:>15}: {value}")

    def _do_runs(self, args: argparse.Namespace) -> Any:
        from nbmlops.display.runs_view import runs_view

        return runs_view(
            experiment=args.experiment,
            filter_string=args.filter,
            order_by=args.order_by,
            last=args.last,
            all_experiments=args.all,
        )

    def _do_compare(self, args: argparse.Namespace) -> Any:
        from nbmlops.display.compare import compare

        directions: dict[str, Any] = {key: "min" for key in args.minimize}
        directions.update({key: "max" for key in args.maximize})
        return compare(
            *args.runs,
            last=args.last,
            best=args.best,
            metric=args.metric,
            lower_is_better=args.lower_is_better,
            directions=directions,
            experiment=args.experiment,
            filter_string=args.filter,
        )

    def _do_show(self, args: argparse.Namespace) -> Any:
        from nbmlops.display.run_detail import show_run

        return show_run(args.run)

    def _do_registry(self, args: argparse.Namespace) -> Any:
        from nbmlops.display.registry_view import registry_view

        return registry_view(args.name, metric=args.metric)

    # ----------------------------------------------------------------- registry
    def _notebook_experiment(self) -> str | None:
        from nbmlops import autolog as api

        session = api.notebook_session(required=False)
        if session is None:
            return None
        return session.experiment_name()

    def _do_register(self, args: argparse.Namespace) -> None:
        from nbmlops import registry

        version = registry.register_run(
            args.run,
            args.name,
            alias=args.alias,
            path=args.path,
            experiment=self._notebook_experiment() if args.run == "last" else None,
        )
        aliases = f" @{', @'.join(version.aliases)}" if version.aliases else ""
        print(f"registered {version.name} v{version.version}{aliases} from {version.source}")

    def _do_promote(self, args: argparse.Namespace) -> None:
        from nbmlops import registry

        decision = registry.promote(
            args.name,
            args.version,
            metric=args.metric,
            greater_is_better=not args.lower_is_better,
            min_delta=args.min_delta,
            alias=args.alias,
            force=args.force,
        )
        print(decision)

    def _do_alias(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        client = tracking.get_client()
        if args.delete:
            if args.version is not None:
                raise UsageError("%mlops alias: give either VERSION or --delete, not both")
            client.delete_registered_model_alias(args.name, args.alias)
            print(f"removed @{args.alias} from {args.name}")
            return
        if args.version is None:
            raise UsageError("%mlops alias: expected NAME ALIAS VERSION (or NAME ALIAS --delete)")
        client.set_registered_model_alias(args.name, args.alias, args.version)
        version = client.get_model_version_by_alias(args.name, args.alias)
        print(f"{args.name} @{args.alias} -> v{version.version}")

    def _do_models(self, args: argparse.Namespace) -> Any:
        from nbmlops import registry

        return registry.models_table(args.name)

    def _do_history(self, args: argparse.Namespace) -> Any:
        from nbmlops import registry

        return registry.history_table(args.name)

    def _do_export(self, args: argparse.Namespace) -> Any:
        from nbmlops.export import export_current_notebook

        report = export_current_notebook(
            out=args.out,
            verify=args.verify,
            package=args.name,
            force=args.force,
            model=args.model,
        )
        print(report.summary())

    # ----------------------------------------------------------------- tuning
    def _user_value(self, expression: str, option: str) -> Any:
        """A notebook value named (or written as an expression) in a magic argument."""
        try:
            return eval(expression, self.shell.user_ns)  # the user's own expression
        except Exception as exc:
            raise UsageError(
                f"%mlops tune {option}: cannot evaluate {expression!r} ({exc})"
            ) from None

    def _bind_tuning(self, result: Any) -> None:
        if result is None:
            return
        self.shell.user_ns["tune_result"] = result
        best = result.best_trial
        if best is not None:
            self.shell.user_ns["best_params"] = dict(best.params)

    def _do_tune(self, args: argparse.Namespace) -> None:
        from nbmlops import tuning

        if args.interactive is None:
            raise UsageError(
                "%mlops tune: use the cell magic `%%mlops tune --trials N` (the cell body is "
                "the objective), or `%mlops tune --interactive SPACE`"
            )
        objective = self._user_value(args.objective, "--objective") if args.objective else None
        directions = args.direction.split(",")
        tuning.tune_interactive(
            objective,
            self._user_value(args.interactive, "--interactive"),
            study=args.study,
            metric=args.metric.split(",") if "," in args.metric else args.metric,
            directions=directions if objective is not None or args.study else None,
            show=not args.no_panel,
        )

    def _tune_cell(self, args: argparse.Namespace, cell: str) -> None:
        from nbmlops import tuning

        metrics = args.metric.split(",")
        directions = args.direction.split(",")
        try:
            objective = tuning.objective_from_cell(
                self.shell.transform_cell(cell), self.shell.user_ns, metric=metrics[0]
            )
            if args.interactive is not None:
                tuning.tune_interactive(
                    objective,
                    self._user_value(args.interactive, "--interactive"),
                    study=args.study,
                    metric=metrics if len(metrics) > 1 else metrics[0],
                    directions=directions,
                    show=not args.no_panel,
                )
                return None
            if args.trials is None and args.timeout is None:
                raise UsageError("%%mlops tune: give --trials N and/or --timeout SECONDS")
            result = tuning.tune(
                objective,
                n_trials=args.trials,
                timeout=args.timeout,
                directions=directions,
                metric=metrics if len(metrics) > 1 else metrics[0],
                sampler=args.sampler,
                pruner=args.pruner,
                storage=args.storage,
                study_name=args.study,
                n_jobs=args.jobs,
                n_workers=args.workers,
                seed=args.seed,
                background=args.background,
                run_name=args.name,
                show=not args.no_panel,
            )
        except tuning.TuningFailed as exc:
            self._bind_tuning(exc.result)
            raise
        except KeyboardInterrupt:
            self._bind_tuning(tuning.last_result())
            raise
        except NbMlopsError as exc:
            raise UsageError(f"%%mlops tune: {exc}") from None
        result.add_done_callback(self._bind_tuning)
        return None


def load(shell: Any) -> None:
    """Register the magics and the session hooks (the whole of ``%load_ext nbmlops``)."""
    from nbmlops.autolog import session

    shell.register_magics(MlopsMagics)
    notebook = session.get_or_create(shell)
    if notebook.settings.autolog and not notebook.autolog_enabled:
        notebook.autolog_on()  # c.NbMlops.autolog = True


def unload(shell: Any) -> None:
    """``%unload_ext nbmlops``: remove hooks; open runs end KILLED."""
    from nbmlops.autolog import session

    session.drop()
