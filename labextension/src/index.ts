/**
 * nbmlops for JupyterLab: the left-sidebar MLOps panel, run detail and compare views in
 * the main area, and the notebook Export command (toolbar button and command palette).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  Notification,
  ToolbarButton,
  showErrorMessage
} from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import type { ReadonlyJSONValue } from '@lumino/coreutils';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { ApiError, MlopsApi } from './api';
import { CompareView } from './compareView';
import type { IPanelContext } from './context';
import { askExport, showReport } from './dialogs';
import { RunDetailView } from './runDetail';
import { mlopsIcon, MlopsSidebar } from './sidebar';

const PLUGIN_ID = 'nbmlops:plugin';

export namespace CommandIDs {
  export const openPanel = 'nbmlops:open-panel';
  export const openRun = 'nbmlops:open-run';
  export const exportNotebook = 'nbmlops:export';
  export const exportAndVerify = 'nbmlops:export-verify';
  export const exportDialog = 'nbmlops:export-dialog';
}

/** A short stable id for a set of runs (compare tabs are reused). */
function compareKey(ids: string[]): string {
  return ids.map(id => id.slice(0, 8)).join('-');
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'nbmlops MLOps sidebar: runs, comparison, model registry and notebook export.',
  autoStart: true,
  optional: [INotebookTracker, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const settings = ServerConnection.makeSettings();
    const api = new MlopsApi(
      (url, init) => ServerConnection.makeRequest(url, init, settings),
      settings.baseUrl
    );
    const open = new Map<string, MainAreaWidget<Widget>>();

    const showInMain = (key: string, make: () => Widget): void => {
      const existing = open.get(key);
      if (existing && !existing.isDisposed) {
        app.shell.activateById(existing.id);
        return;
      }
      const content = make();
      const widget = new MainAreaWidget({ content });
      widget.id = `nbmlops-${key}`;
      widget.title.icon = mlopsIcon;
      widget.title.closable = true;
      widget.title.label = content.title.label;
      content.title.changed.connect(() => {
        widget.title.label = content.title.label;
        widget.title.caption = content.title.caption;
      });
      widget.disposed.connect(() => open.delete(key));
      open.set(key, widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };

    const goToCell = async (
      path: string,
      cellId: string | null,
      executionCount: number | null
    ): Promise<void> => {
      const widget = (await app.commands.execute('docmanager:open', {
        path,
        factory: 'Notebook'
      })) as NotebookPanel | undefined;
      if (!widget || !(widget instanceof NotebookPanel)) {
        return;
      }
      await widget.context.ready;
      await widget.revealed;
      app.shell.activateById(widget.id);
      const notebook = widget.content;
      let index = cellId ? notebook.widgets.findIndex(cell => cell.model.id === cellId) : -1;
      if (index < 0 && executionCount !== null) {
        index = notebook.widgets.findIndex(
          cell =>
            cell.model.type === 'code' &&
            (cell.model as unknown as { executionCount: number | null }).executionCount === executionCount
        );
      }
      if (index < 0) {
        Notification.warning('The cell that made this run is no longer in the notebook.', {
          autoClose: 4000
        });
        return;
      }
      notebook.activeCellIndex = index;
      notebook.mode = 'command';
      await notebook.scrollToItem(index, 'center');
    };

    const ctx: IPanelContext = {
      api,
      openRun: runId => showInMain(`run-${runId}`, () => new RunDetailView(ctx, runId)),
      openCompare: runIds =>
        showInMain(`compare-${compareKey(runIds)}`, () => new CompareView(ctx, runIds)),
      goToCell
    };

    const sidebar = new MlopsSidebar(ctx);
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, 'nbmlops-sidebar');

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show the MLOps Panel',
      caption: 'Open the nbmlops sidebar (runs and models)',
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: 'Open nbmlops Run',
      execute: args => {
        const runId = String(args['runId'] ?? '');
        if (runId) {
          ctx.openRun(runId);
        }
      }
    });

    // ---------------------------------------------------------------- export
    const exportActive = async (verify: boolean, force = false): Promise<void> => {
      const panel = tracker?.currentWidget;
      if (!panel) {
        await showErrorMessage('Export notebook', 'Open a notebook to export it.');
        return;
      }
      if (panel.context.model.dirty) {
        await panel.context.save();
      }
      const path = panel.context.path;
      const task = api.exportNotebook(path, verify, force);
      Notification.promise(task as Promise<unknown> as Promise<ReadonlyJSONValue>, {
        pending: { message: verify ? `Exporting and verifying ${path}…` : `Exporting ${path}…`, options: { autoClose: false } },
        success: { message: () => `Exported ${path}`, options: { autoClose: 3000 } },
        error: { message: (error: unknown) => `Export failed: ${error instanceof Error ? error.message : String(error)}` }
      });
      try {
        const reply = await task;
        await showReport(
          reply.ok
            ? `Exported to ${reply.out_dir}${reply.verified ? ' (verified)' : ''}`
            : `Exported to ${reply.out_dir}: verification found differences`,
          reply.text || JSON.stringify(reply.report, null, 2),
          reply.ok
        );
      } catch (error) {
        const text =
          error instanceof ApiError && error.kind === 'not-available'
            ? `Notebook export is not available on this server: ${error.message}`
            : error instanceof Error
              ? error.message
              : String(error);
        await showReport('Export failed', text, false);
      }
    };
    const hasNotebook = () => !!tracker?.currentWidget;
    app.commands.addCommand(CommandIDs.exportNotebook, {
      label: 'Export Notebook to a Package (nbmlops)',
      caption: 'Export the active notebook into an importable package (config, features, train, infer, tests)',
      isEnabled: hasNotebook,
      execute: () => exportActive(false)
    });
    app.commands.addCommand(CommandIDs.exportAndVerify, {
      label: 'Export and Verify Notebook (nbmlops)',
      caption: 'Export the active notebook and re-run its training to compare metrics',
      isEnabled: hasNotebook,
      execute: () => exportActive(true)
    });
    app.commands.addCommand(CommandIDs.exportDialog, {
      label: 'Export…',
      caption: 'Export this notebook into a package (nbmlops)',
      isEnabled: hasNotebook,
      execute: async () => {
        const panel = tracker?.currentWidget;
        if (!panel) {
          return;
        }
        const answer = await askExport(panel.context.path);
        if (answer) {
          await exportActive(answer.verify, answer.force);
        }
      }
    });
    if (palette) {
      for (const command of [CommandIDs.openPanel, CommandIDs.exportNotebook, CommandIDs.exportAndVerify]) {
        palette.addItem({ command, category: 'MLOps' });
      }
    }
    app.docRegistry.addWidgetExtension('Notebook', new ExportButton(app));

    // ---------------------------------------------------------------- follow the notebook
    if (tracker) {
      let watched: NotebookPanel | null = null;
      const onStatus = (_: unknown, status: string) => sidebar.setBusy(status === 'busy');
      const follow = (panel: NotebookPanel | null) => {
        if (watched) {
          watched.sessionContext.statusChanged.disconnect(onStatus);
        }
        watched = panel;
        if (!panel) {
          sidebar.setNotebook(null);
          return;
        }
        void panel.context.ready.then(() => {
          if (watched === panel) {
            sidebar.setNotebook(panel.context.path);
          }
        });
        panel.sessionContext.statusChanged.connect(onStatus);
        panel.context.pathChanged.connect(() => {
          if (watched === panel) {
            sidebar.setNotebook(panel.context.path);
          }
        });
      };
      tracker.currentChanged.connect((_, panel) => follow(panel));
      follow(tracker.currentWidget);
      NotebookActions.executionScheduled.connect(() => sidebar.poke());
      NotebookActions.executed.connect(() => sidebar.poke());
    } else {
      sidebar.setNotebook(null);
    }
    if (!tracker?.currentWidget) {
      void sidebar.reload();
    }
  }
};

/** The notebook toolbar's Export button. */
class ExportButton implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'jp-nbmlops-export-button',
      label: 'Export',
      icon: mlopsIcon,
      tooltip: 'Export this notebook into a package (nbmlops)',
      onClick: () => {
        void this.app.commands.execute(CommandIDs.exportDialog);
      }
    });
    panel.toolbar.insertItem(10, 'nbmlops-export', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

export default plugin;
