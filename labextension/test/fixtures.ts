import type { IRunRow } from '../src/types';

let counter = 0;

/** A run row with sensible defaults. */
export function row(overrides: Partial<IRunRow> = {}): IRunRow {
  counter += 1;
  const id = (overrides.run_id ?? counter.toString(16)).padStart(32, '0');
  return {
    name: `run-${counter}`,
    status: 'FINISHED',
    start_time: 1000 + counter,
    end_time: 2000 + counter,
    parent_run_id: null,
    experiment_id: '1',
    run_type: 'cell',
    cell: null,
    params: {},
    metrics: {},
    ...overrides,
    run_id: id
  } as IRunRow;
}
