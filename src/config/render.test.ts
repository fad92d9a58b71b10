import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from './load';
import { renderToml } from './render';
import { type Config, defaultConfig } from './schema';

let tmp = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'nodecri-render-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Renders `config`, loads the file back (no drop-ins) and returns the result. */
async function roundTrip(config: Config): Promise<Config> {
  const file = path.join(await fs.mkdtemp(path.join(tmp, 'case-')), 'nodecri.toml');
  await fs.writeFile(file, renderToml(config));
  const loaded = await loadConfig({ file, dir: null, overrides: {} }, { file, dir: path.join(tmp, 'absent.d') });
  assert.deepEqual(loaded.sources, [file]);
  return loaded.config;
}

describe('renderToml', () => {
  it('round-trips the defaults', async () => {
    assert.deepEqual(await roundTrip(defaultConfig()), defaultConfig());
  });

  it('round-trips runtimes, registries with mirrors, and non-default values', async () => {
    const c = defaultConfig();
    c.root = '/srv/nodecri state';
    c.logLevel = 'trace';
    c.shutdownTimeout = 0;
    c.defaultRuntime = 'crun';
    c.runtimes.crun = { type: 'oci', path: '/usr/bin/crun', root: '/run/crun' };
    c.runtimes.runc = { type: 'oci', path: '/usr/sbin/runc', root: null };
    c.network.cniPluginDirs = [];
    c.image.registries = [
      {
        prefix: 'docker.io',
        location: 'registry-1.docker.io',
        insecure: false,
        blocked: false,
        mirrors: [
          { location: 'mirror.example.com:5000', insecure: true },
          { location: 'mirror2.example.com', insecure: false },
        ],
      },
      { prefix: null, location: 'evil.example.com', insecure: false, blocked: true, mirrors: [] },
      { prefix: '*.example.org', location: 'local:5000/org', insecure: true, blocked: false, mirrors: [] },
    ];
    c.metrics = { enabled: true, address: '[::1]:9100' };
    c.tracing = { enabled: true, endpoint: 'http://otel:4318/v1/traces?x="y"', samplingRate: 0.25 };
    c.streaming.address = ':10010';
    assert.deepEqual(await roundTrip(c), c);
  });

  it('puts a comment above every key', () => {
    const lines = renderToml(defaultConfig()).split('\n');
    const keys = lines.map((l, i) => [l, i] as const).filter(([l]) => /^[a-z_]+ = /.test(l));
    assert.ok(keys.length > 20, `only ${keys.length} keys rendered`);
    for (const [l, i] of keys) assert.match(lines[i - 1], /^# \S/, `no comment above ${l}`);
  });
});
