import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { stepTimer } from './steps';

function metricsOf() {
  const registry = new Registry();
  const stepDuration = new Histogram({ name: 'step_seconds', help: 'steps', labelNames: ['operation', 'step'], buckets: [0.001, 1], registers: [registry] });
  return { registry, stepDuration };
}

async function counts(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await registry.getMetricsAsJSON())[0]!.values) {
    if ((m as { metricName?: string }).metricName === 'step_seconds_count') out[`${m.labels.operation}/${m.labels.step}`] = m.value;
  }
  return out;
}

test('each step is observed under its operation, failed steps too, and the result and error pass through', async () => {
  const m = metricsOf();
  const steps = stepTimer(m, 'Op');
  assert.equal(await steps.time('a', async () => 7), 7);
  await steps.time('a', async () => {});
  await assert.rejects(
    steps.time('b', async () => {
      throw new Error('no');
    }),
    /no/,
  );
  assert.equal(
    steps.timeSync('c', () => 'x'),
    'x',
  );
  assert.throws(() =>
    steps.timeSync('c', () => {
      throw new Error('sync no');
    }),
  );
  await stepTimer(m, 'Other').time('a', async () => {});
  assert.deepEqual(await counts(m.registry), { 'Op/a': 2, 'Op/b': 1, 'Op/c': 2, 'Other/a': 1 });
});

test('overlapping steps are each timed whole', async () => {
  const m = metricsOf();
  const steps = stepTimer(m, 'Op');
  let release!: () => void;
  const long = steps.time('long', () => new Promise<void>((r) => (release = r)));
  await steps.time('short', async () => {});
  release();
  await long;
  assert.deepEqual(await counts(m.registry), { 'Op/long': 1, 'Op/short': 1 });
});

test('without metrics nothing is timed and the step still runs', async () => {
  const steps = stepTimer(null, 'Op');
  assert.equal(await steps.time('a', async () => 1), 1);
  assert.equal(
    steps.timeSync('b', () => 2),
    2,
  );
});
