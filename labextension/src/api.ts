/**
 * The one request helper of the extension and the typed client of `/nbmlops/api/`.
 *
 * `MlopsApi` has no runtime dependency on JupyterLab: it sends requests through a
 * `Fetcher` (in the lab, `ServerConnection.makeRequest`, which adds the token and the
 * XSRF header; in the unit tests, a fake), so the request layer is tested on its own.
 */
import type {
  IArtifactsPage,
  IComparison,
  IErrorBody,
  IExperimentsPage,
  IExportReply,
  IMetricHistory,
  IModelsPage,
  IModelView,
  IPromoteReply,
  IPromoteRequest,
  IRunDetail,
  IRunsPage,
  IStatus,
  IStoresReply
} from './types';

/** Sends one HTTP request (the lab's `ServerConnection.makeRequest`, or a fake). */
export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

export type QueryValue = string | number | boolean | null | undefined | string[];

/** What went wrong with a request, for people. */
export type ErrorKind =
  | 'network' // the Jupyter server did not answer
  | 'missing-server' // the nbmlops server extension is not installed/enabled
  | 'auth' // 403: signed out, or a write without the XSRF token
  | 'invalid' // 400
  | 'not-found' // 404
  | 'conflict' // 409
  | 'not-available' // 501
  | 'server'; // 5xx

/** An API error with the server's (escaped, path-free) message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly kind: ErrorKind
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Which store a request is about: the notebook's (walking rule) or a picked one. */
export interface IStoreSelection {
  notebook?: string | null;
  store?: string | null;
}

export interface IRunsQuery {
  experiment?: string | null;
  filter?: string;
  orderBy?: string[];
  parent?: string | null;
  pageToken?: string | null;
  maxResults?: number;
}

export interface IRequestOptions {
  method?: 'GET' | 'POST';
  query?: Record<string, QueryValue>;
  body?: unknown;
  signal?: AbortSignal;
}

const API_ROOT = 'nbmlops/api';

function kindOf(status: number): ErrorKind {
  if (status === 400) {
    return 'invalid';
  }
  if (status === 403) {
    return 'auth';
  }
  if (status === 404) {
    return 'not-found';
  }
  if (status === 409) {
    return 'conflict';
  }
  if (status === 501) {
    return 'not-available';
  }
  return 'server';
}

/** Encode each `/`-separated part of a path (artifact paths keep their folders). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .filter(part => part.length > 0)
    .map(part => encodeURIComponent(part))
    .join('/');
}

/** `a=1&b=x&b=y` from an object; null/undefined/'' values are left out. */
export function queryString(query: Record<string, QueryValue>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (item === null || item === undefined || item === '') {
        continue;
      }
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(item))}`);
    }
  }
  return parts.join('&');
}

/** The typed client of the nbmlops REST API. */
export class MlopsApi {
  /** The store every request is about (set by the sidebar). */
  selection: IStoreSelection = {};

  /**
   * @param fetcher sends requests (adds Jupyter's credentials)
   * @param baseUrl the server's base URL, ending in `/`
   */
  constructor(
    private readonly fetcher: Fetcher,
    private readonly baseUrl: string
  ) {}

  /** The URL of an API path with the store selection and `query` in its query string. */
  url(path: string, query: Record<string, QueryValue> = {}): string {
    const base = this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`;
    const search = queryString({
      notebook: this.selection.notebook,
      store: this.selection.store,
      ...query
    });
    return `${base}${API_ROOT}/${path}${search ? `?${search}` : ''}`;
  }

  /** Send a request and decode its JSON reply; failures become `ApiError`s. */
  async request<T>(path: string, options: IRequestOptions = {}): Promise<T> {
    const init: RequestInit = { method: options.method ?? 'GET', signal: options.signal };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const response = await this.send(this.url(path, options.query), init);
    const text = await response.text();
    if (!response.ok) {
      throw this.failure(response, text);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'the server sent a reply that is not JSON', 'server');
    }
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetcher(url, init);
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') {
        throw error;
      }
      throw new ApiError(0, 'cannot reach the Jupyter server', 'network');
    }
  }

  private failure(response: Response, text: string): ApiError {
    let body: Partial<IErrorBody> | null = null;
    try {
      body = JSON.parse(text) as Partial<IErrorBody>;
    } catch {
      body = null;
    }
    const status = response.status;
    if (body === null || typeof body.message !== 'string') {
      if (status === 404) {
        return new ApiError(
          status,
          'the nbmlops server extension is not running on this Jupyter server ' +
            '(install nbmlops in the server’s environment and restart it)',
          'missing-server'
        );
      }
      return new ApiError(status, `HTTP ${status} ${response.statusText}`.trim(), kindOf(status));
    }
    if (status === 403) {
      return new ApiError(
        status,
        'not allowed: sign in to Jupyter again (or the request lacked its XSRF token)',
        'auth'
      );
    }
    return new ApiError(status, body.message, kindOf(status));
  }

  // ------------------------------------------------------------------ routes
  status(signal?: AbortSignal): Promise<IStatus> {
    return this.request<IStatus>('status', { signal });
  }

  stores(): Promise<IStoresReply> {
    return this.request<IStoresReply>('stores', {
      query: { notebook: this.selection.notebook ?? null, store: null }
    });
  }

  experiments(): Promise<IExperimentsPage> {
    return this.request<IExperimentsPage>('experiments');
  }

  runs(query: IRunsQuery = {}, signal?: AbortSignal): Promise<IRunsPage> {
    return this.request<IRunsPage>('runs', {
      signal,
      query: {
        experiment: query.experiment,
        filter: query.filter,
        order_by: query.orderBy,
        parent: query.parent,
        page_token: query.pageToken,
        max_results: query.maxResults
      }
    });
  }

  run(runId: string): Promise<IRunDetail> {
    return this.request<IRunDetail>(`runs/${encodeURIComponent(runId)}`);
  }

  metricHistory(runId: string, key: string, maxPoints = 1000): Promise<IMetricHistory> {
    return this.request<IMetricHistory>(
      `runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}`,
      { query: { max_points: maxPoints } }
    );
  }

  artifacts(runId: string, prefix?: string): Promise<IArtifactsPage> {
    return this.request<IArtifactsPage>(`runs/${encodeURIComponent(runId)}/artifacts`, {
      query: { path: prefix }
    });
  }

  /** The URL of one artifact file (`download` forces an attachment). */
  artifactUrl(runId: string, path: string, download = false): string {
    return this.url(`runs/${encodeURIComponent(runId)}/artifacts/${encodePath(path)}`, {
      download: download ? '1' : null
    });
  }

  /** One artifact's bytes (images are shown from these as object URLs). */
  async artifactBlob(runId: string, path: string): Promise<Blob> {
    const response = await this.send(this.artifactUrl(runId, path), { method: 'GET' });
    if (!response.ok) {
      throw this.failure(response, await response.text());
    }
    return response.blob();
  }

  compare(runIds: string[], metric?: string | null): Promise<IComparison> {
    return this.request<IComparison>('compare', {
      query: { ids: runIds.join(','), metric: metric ?? null }
    });
  }

  models(filter?: string): Promise<IModelsPage> {
    return this.request<IModelsPage>('models', { query: { filter } });
  }

  model(name: string): Promise<IModelView> {
    return this.request<IModelView>(`models/${encodeURIComponent(name)}`);
  }

  setAlias(name: string, alias: string, version: number, reason?: string): Promise<IModelView> {
    return this.request<IModelView>(`models/${encodeURIComponent(name)}/aliases`, {
      method: 'POST',
      body: { alias, version, reason }
    });
  }

  deleteAlias(name: string, alias: string, reason?: string): Promise<IModelView> {
    return this.request<IModelView>(`models/${encodeURIComponent(name)}/aliases`, {
      method: 'POST',
      body: { alias, delete: true, reason }
    });
  }

  promote(name: string, request: IPromoteRequest): Promise<IPromoteReply> {
    return this.request<IPromoteReply>(`models/${encodeURIComponent(name)}/promote`, {
      method: 'POST',
      body: request
    });
  }

  /** Export a notebook (path relative to the server root); `force` replaces an earlier export. */
  exportNotebook(path: string, verify: boolean, force = false): Promise<IExportReply> {
    return this.request<IExportReply>('export', { method: 'POST', body: { path, verify, force } });
  }
}
