import { describe, expect, it } from 'vitest';

import { ApiError, encodePath, MlopsApi, queryString } from '../src/api';

interface ICall {
  url: string;
  init: RequestInit;
}

function fakeServer(reply: (call: ICall) => Response | Promise<Response>) {
  const calls: ICall[] = [];
  const api = new MlopsApi(async (url, init) => {
    const call = { url, init };
    calls.push(call);
    return reply(call);
  }, 'http://lab/base/');
  return { api, calls };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('URLs', () => {
  it('encodes query strings, repeating arrays and dropping empty values', () => {
    expect(queryString({ a: 1, b: ['x', 'y z'], c: null, d: undefined, e: '' })).toBe('a=1&b=x&b=y%20z');
  });

  it('encodes every part of an artifact path but keeps its folders', () => {
    expect(encodePath('figures/a b#1.png')).toBe('figures/a%20b%231.png');
    expect(encodePath('../x')).toBe('../x'.split('/').map(encodeURIComponent).join('/'));
  });

  it('adds the store selection to every request', async () => {
    const { api, calls } = fakeServer(() => json({ runs: [], next_page_token: null, store_exists: true }));
    api.selection = { notebook: 'dir/my notebook.ipynb' };
    await api.runs({ experiment: '3', filter: "metrics.f1 > 0.8 and params.m = 'rf'", maxResults: 50 });
    const url = new URL(calls[0].url);
    expect(url.pathname).toBe('/base/nbmlops/api/runs');
    expect(url.searchParams.get('notebook')).toBe('dir/my notebook.ipynb');
    expect(url.searchParams.get('experiment')).toBe('3');
    expect(url.searchParams.get('filter')).toBe("metrics.f1 > 0.8 and params.m = 'rf'");
    expect(url.searchParams.get('max_results')).toBe('50');
    expect(url.searchParams.has('store')).toBe(false);
    api.selection = { notebook: 'x.ipynb', store: 'abcdef0123456789' };
    await api.experiments();
    const picked = new URL(calls[1].url);
    expect(picked.searchParams.get('store')).toBe('abcdef0123456789');
  });

  it('builds metric, artifact and model routes with escaped segments', async () => {
    const { api, calls } = fakeServer(() => json({}));
    await api.metricHistory('r1', 'val loss', 200);
    await api.model('churn/x');
    expect(calls[0].url).toContain('/nbmlops/api/runs/r1/metrics/val%20loss?max_points=200');
    expect(calls[1].url).toContain('/nbmlops/api/models/churn%2Fx');
    expect(api.artifactUrl('r1', 'figures/roc.png', true)).toBe(
      'http://lab/base/nbmlops/api/runs/r1/artifacts/figures/roc.png?download=1'
    );
  });
});

describe('requests', () => {
  it('posts JSON bodies for writes', async () => {
    const { api, calls } = fakeServer(() => json({ model: {}, versions: [] }));
    await api.setAlias('churn', 'challenger', 2, 'better f1');
    await api.deleteAlias('churn', 'challenger');
    await api.promote('churn', { version: 2, metric: 'f1', min_delta: 0.01 });
    await api.exportNotebook('nb/a.ipynb', true);
    expect(calls.map(c => c.init.method)).toEqual(['POST', 'POST', 'POST', 'POST']);
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ alias: 'challenger', version: 2, reason: 'better f1' });
    expect(JSON.parse(String(calls[1].init.body))).toEqual({ alias: 'challenger', delete: true });
    expect(calls[2].url).toContain('/models/churn/promote');
    expect(JSON.parse(String(calls[3].init.body))).toEqual({ path: 'nb/a.ipynb', verify: true, force: false });
    expect((calls[0].init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('decodes replies and keeps the JSON spelling of non-finite metrics', async () => {
    const { api } = fakeServer(() =>
      json({ runs: [{ run_id: 'a', metrics: { f1: 'NaN' } }], next_page_token: 'tok', store_exists: true })
    );
    const page = await api.runs();
    expect(page.next_page_token).toBe('tok');
    expect(page.runs[0].metrics.f1).toBe('NaN');
  });
});

describe('errors', () => {
  it('turns JSON errors into ApiErrors with the server message and a kind', async () => {
    const cases: [number, string][] = [
      [400, 'invalid'],
      [404, 'not-found'],
      [409, 'conflict'],
      [501, 'not-available'],
      [500, 'server']
    ];
    for (const [status, kind] of cases) {
      const { api } = fakeServer(() => json({ message: `boom ${status}`, status, error: 'X' }, status));
      const error = await api.status().catch(e => e);
      expect(error).toBeInstanceOf(ApiError);
      expect(error.status).toBe(status);
      expect(error.kind).toBe(kind);
      expect(error.message).toBe(`boom ${status}`);
    }
  });

  it('says the server extension is missing on a non-JSON 404', async () => {
    const { api } = fakeServer(() => new Response('<html>404</html>', { status: 404 }));
    const error = await api.status().catch(e => e);
    expect(error.kind).toBe('missing-server');
    expect(error.message).toMatch(/server extension is not running/);
  });

  it('explains a 403 and a network failure', async () => {
    const { api } = fakeServer(() => json({ message: 'Forbidden', status: 403, error: 'HTTPError' }, 403));
    expect((await api.models().catch(e => e)).kind).toBe('auth');
    const offline = new MlopsApi(async () => {
      throw new TypeError('Failed to fetch');
    }, '/');
    const error = await offline.status().catch(e => e);
    expect(error.kind).toBe('network');
    expect(error.message).toMatch(/cannot reach/);
  });

  it('refuses a reply that is not JSON', async () => {
    const { api } = fakeServer(() => new Response('not json', { status: 200 }));
    expect((await api.status().catch(e => e)).message).toMatch(/not JSON/);
  });

  it('fetches artifact bytes and reports their errors', async () => {
    const { api } = fakeServer(({ url }) =>
      url.includes('ok.png') ? new Response(new Uint8Array([1, 2, 3])) : json({ message: 'no artifact', status: 404, error: 'NotFound' }, 404)
    );
    const blob = await api.artifactBlob('r', 'ok.png');
    expect(blob.size).toBe(3);
    const error = await api.artifactBlob('r', 'missing.png').catch(e => e);
    expect(error.kind).toBe('not-found');
  });
});
