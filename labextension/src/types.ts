/**
 * Response shapes of the nbmlops REST API (`/nbmlops/api/`), mirroring
 * `nbmlops/entities.py` and the view models of `nbmlops/display/model.py` as the server
 * serialises them with `to_dict` (see `nbmlops/server/services.py`).
 */

/** JSON has no NaN/Infinity literals: the server spells non-finite floats as strings. */
export type MetricValue = number | 'NaN' | 'Infinity' | '-Infinity';

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface IStoreInfo {
  id: string;
  kind: 'sqlite' | 'memory' | 'mlflow';
  location: string;
  label: string;
  origin: 'env' | 'notebook' | 'root' | 'found';
  exists: boolean;
}

export interface INotebookContext {
  path: string;
  experiment_id: string | null;
  experiment_name: string | null;
}

export interface IStatus {
  version: string;
  api_version: number;
  store: IStoreInfo;
  features: { export: boolean };
  notebook: INotebookContext | null;
}

export interface IStoresReply {
  stores: IStoreInfo[];
}

export interface IExperiment {
  experiment_id: string;
  name: string;
  created_at: number;
  artifact_location: string;
  lifecycle_stage: string;
}

export interface IExperimentsPage {
  experiments: IExperiment[];
  next_page_token: string | null;
  store_exists: boolean;
}

/** A run as a table row (`RunRow` of the display model, plus cell id and error). */
export interface IRunRow {
  run_id: string;
  name: string;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  parent_run_id: string | null;
  experiment_id: string;
  run_type: string;
  cell: number | null;
  params: Record<string, string>;
  metrics: Record<string, MetricValue>;
  cell_id?: string | null;
  error?: string | null;
}

export interface IRunsPage {
  runs: IRunRow[];
  next_page_token: string | null;
  store_exists: boolean;
}

export interface IRunSource {
  path: string;
  cell_id: string;
  execution_count: number | null;
  code_sha256: string;
  code: string;
}

export interface IRunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  parent_run_id: string | null;
  user: string;
  lifecycle_stage: string;
  artifact_uri: string;
  source: IRunSource;
}

export interface IDatasetInput {
  name: string;
  digest: string;
  context: string;
  shape: number[];
  schema: Record<string, string>;
  source: string;
}

export interface IRun {
  info: IRunInfo;
  data: {
    params: Record<string, string>;
    metrics: Record<string, MetricValue>;
    tags: Record<string, string>;
  };
  inputs: IDatasetInput[];
}

export interface IArtifact {
  path: string;
  size: number;
  sha256: string;
  media_type: string;
  created_at: number;
  inline: boolean;
  content_type: string;
}

export interface IModelVersion {
  name: string;
  version: number;
  source_run_id: string;
  model_path: string;
  description: string;
  tags: Record<string, string>;
  created_at: number;
  created_by: string;
  stage: string;
  aliases: string[];
}

export interface IParentLink {
  run_id: string;
  name?: string;
  run_type?: string;
  status?: RunStatus;
  missing?: boolean;
}

export interface ILineage {
  cells: { execution_count: number; cell_id: string; code_sha256: string }[];
  code: Record<string, string>;
}

export interface IRunDetail {
  run: IRun;
  experiment_name: string | null;
  parent: IRunRow | null;
  children: IRunRow[];
  more_children: boolean;
  /** The first 500 artifacts; `artifacts_total` counts them all. */
  artifacts: IArtifact[];
  artifacts_total: number;
  model: Record<string, unknown> | null;
  model_error: string | null;
  versions: IModelVersion[];
  parents: IParentLink[];
  lineage: ILineage | null;
  notebook_path: string | null;
}

export interface IMetricPoint {
  step: number;
  value: MetricValue;
  timestamp: number;
}

export interface IMetricHistory {
  run_id: string;
  key: string;
  total: number;
  downsampled: boolean;
  points: IMetricPoint[];
}

export interface IArtifactsPage {
  artifacts: IArtifact[];
  next_page_token: string | null;
}

export interface IRunHeader {
  run_id: string;
  name: string;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  experiment_id: string;
  run_type: string;
  cell: number | null;
}

export interface IValueRow {
  key: string;
  values: (string | null)[];
  differs: boolean;
}

export interface IMetricRow {
  key: string;
  values: (MetricValue | null)[];
  direction: 'max' | 'min';
  best: number[];
  differs: boolean;
}

export interface IInputRow {
  name: string;
  context: string;
  digests: (string | null)[];
  shapes: (number[] | null)[];
  digest_differs: boolean;
  shape_differs: boolean;
}

export interface ICodeDiff {
  from_index: number;
  to_index: number;
  lines: string[];
  identical: boolean;
  missing: boolean;
}

/** Per run: `[steps, values]`. */
export type HistorySeries = [number[], MetricValue[]];

export interface IComparison {
  runs: IRunHeader[];
  params: IValueRow[];
  metrics: IMetricRow[];
  tags: IValueRow[];
  inputs: IInputRow[];
  environment: IValueRow[];
  environment_same: number;
  environment_missing: number[];
  code: (string | null)[];
  histories: Record<string, HistorySeries[]>;
  code_diffs: ICodeDiff[];
  notebook_paths: (string | null)[];
}

export interface IRegisteredModel {
  name: string;
  description: string;
  tags: Record<string, string>;
  created_at: number;
  updated_at: number;
  aliases: Record<string, number>;
  latest_version: number | null;
}

export interface IModelsPage {
  models: IRegisteredModel[];
  next_page_token: string | null;
  store_exists: boolean;
}

export interface IVersionRow {
  version: IModelVersion;
  run_name: string | null;
  run_status: RunStatus | null;
  metrics: Record<string, MetricValue>;
}

export interface IRegistryEvent {
  name: string;
  version: number | null;
  action: string;
  from_value: string | null;
  to_value: string | null;
  reason: string;
  user: string;
  timestamp: number;
  alias: string | null;
}

export interface IModelView {
  model: IRegisteredModel;
  versions: IVersionRow[];
  metric_keys: string[];
  history: IRegistryEvent[];
  history_total: number;
  default_metric: string | null;
}

export interface IPromotionDecision {
  name: string;
  version: number;
  alias: string;
  metric: string;
  candidate_value: MetricValue | null;
  champion_version: number | null;
  champion_value: MetricValue | null;
  greater_is_better: boolean;
  min_delta: number;
  forced: boolean;
  promoted: boolean;
  reason: string;
  previous_alias: string;
  user: string;
  timestamp: number;
  text: string;
}

export interface IPromoteReply {
  decision: IPromotionDecision;
  model: IModelView;
}

export interface IPromoteRequest {
  version: number;
  metric?: string;
  greater_is_better?: boolean;
  min_delta?: number;
  alias?: string;
  force?: boolean;
  reason?: string;
}

export interface IExportReply {
  report: Record<string, unknown>;
  text: string;
  out_dir: string;
  /** False when verification found a mismatch. */
  ok: boolean;
  /** null without verification. */
  verified: boolean | null;
}

/** The body of every error response. */
export interface IErrorBody {
  message: string;
  status: number;
  error: string;
}
