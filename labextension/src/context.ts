/**
 * What the panels need from the lab, as one small interface (implemented in `index.ts`),
 * so the widgets stay free of plugin wiring.
 */
import type { MlopsApi } from './api';

export interface IPanelContext {
  /** The REST client (its `selection` says which store). */
  api: MlopsApi;
  /** Open a run's detail view in the main area. */
  openRun(runId: string): void;
  /** Open the comparison of several runs in the main area. */
  openCompare(runIds: string[]): void;
  /** Open `path` (relative to the server root) and scroll to the cell that made a run. */
  goToCell(path: string, cellId: string | null, executionCount: number | null): Promise<void>;
}

/** The frontend's version (kept equal to the Python package's by the build). */
export const FRONTEND_VERSION = '0.1.0';
/** The REST API shape this frontend speaks (`nbmlops.server.API_VERSION`). */
export const API_VERSION = 1;
