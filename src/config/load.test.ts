import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type LoadOptions, loadConfig, loadOptionsFromFlags, overridesFromFlags } from './load';
import { defaultConfig } from './schema';
import { ConfigError } from './validate';

let tmp = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'nodecri-config-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A fresh case directory with `files` (relative name → content) written into it. */
async function setup(files: Record<string, string>): Promise<{ dir: string; dropins: string; main: string }> {
  const dir = await fs.mkdtemp(path.join(tmp, 'case-'));
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  return { dir, dropins: path.join(dir, 'nodecri.d'), main: path.join(dir, 'nodecri.toml') };
}

/** Loads with the case's files standing in for the default /etc paths. */
async function load(files: Record<string, string>, opts: Partial<LoadOptions> = {}) {
  const c = await setup(files);
  const loaded = await loadConfig({ file: null, dir: null, overrides: {}, ...opts }, { file: c.main, dir: c.dropins });
  return { ...loaded, ...c };
}

async function loadError(files: Record<string, string>, opts: Partial<LoadOptions> = {}): Promise<ConfigError> {
  try {
    await load(files, opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('gives the defaults when the default file and dir are absent', async () => {
    const { config, sources } = await load({});
    assert.deepEqual(config, defaultConfig());
    assert.deepEqual(sources, []);
  });

  it('fails when an explicitly named file or dir is absent', async () => {
    const missing = path.join(tmp, 'nope.toml');
    const e = await loadError({}, { file: missing });
    assert.match(e.message, new RegExp(`^${missing}: cannot read config file: .*ENOENT`));
    const d = await loadError({}, { dir: path.join(tmp, 'nope.d') });
    assert.match(d.message, /nope\.d: cannot read config directory/);
  });

  it('applies the file, then drop-ins in lexical order', async () => {
    const { config, sources, main, dropins } = await load({
      'nodecri.toml': 'log_level = "debug"\nroot = "/a"\n',
      'nodecri.d/20-b.toml': 'root = "/b"\n',
      'nodecri.d/10-a.toml': 'root = "/c"\nrunroot = "/r"\n',
      'nodecri.d/README': 'not toml',
      'nodecri.d/30-dir.toml/x': '',
    });
    assert.equal(config.root, '/b');
    assert.equal(config.runroot, '/r');
    assert.equal(config.logLevel, 'debug');
    assert.deepEqual(sources, [main, path.join(dropins, '10-a.toml'), path.join(dropins, '20-b.toml')]);
  });

  it('merges tables key by key and replaces arrays', async () => {
    const { config } = await load({
      'nodecri.toml': '[network]\ncni_config_dir = "/cni"\ncni_plugin_dirs = ["/x", "/y"]\n',
      'nodecri.d/10.toml': '[network]\ncni_plugin_dirs = ["/z"]\n[runtimes.crun]\ntype = "oci"\n',
      'nodecri.d/20.toml': '[runtimes.crun]\npath = "/usr/bin/crun"\n',
    });
    assert.equal(config.network.cniConfigDir, '/cni');
    assert.deepEqual(config.network.cniPluginDirs, ['/z']);
    assert.equal(config.network.cniConfigWait, 10);
    assert.deepEqual(config.runtimes, {
      native: { type: 'native', path: null, root: null },
      crun: { type: 'oci', path: '/usr/bin/crun', root: null },
    });
  });

  it('lets flag overrides beat the files', async () => {
    const overrides = overridesFromFlags({
      root: '/flag',
      cniPluginDir: ['/p1', '/p2'],
      metricsAddress: '0.0.0.0:9100',
      logLevel: 'warn',
    });
    const { config } = await load(
      {
        'nodecri.toml': 'root = "/file"\n[network]\ncni_plugin_dirs = ["/f"]\n',
        'nodecri.d/10.toml': 'root = "/dropin"\nlog_level = "debug"\n',
      },
      { overrides },
    );
    assert.equal(config.root, '/flag');
    assert.equal(config.logLevel, 'warn');
    assert.deepEqual(config.network.cniPluginDirs, ['/p1', '/p2']);
    assert.deepEqual(config.metrics, { enabled: true, address: '0.0.0.0:9100' });
  });

  it('rejects an unknown key, naming the file and the key', async () => {
    const e = await loadError({ 'nodecri.d/10-x.toml': '[metrics]\nadress = "1.2.3.4:5"\n' });
    assert.match(e.message, /\/nodecri\.d\/10-x\.toml: unknown key "metrics\.adress"$/);
    assert.equal(e.key, 'metrics.adress');
  });

  it('rejects a wrong type, naming the file and the key', async () => {
    const e = await loadError({ 'nodecri.d/10-x.toml': '[network]\ncni_config_dir = 5\n' });
    assert.match(e.message, /\/10-x\.toml: key "network\.cni_config_dir": expected a string, got integer$/);
    const f = await loadError({ 'nodecri.toml': '[network]\ncni_plugin_dirs = ["/a", 1.5]\n' });
    assert.match(f.message, /nodecri\.toml: key "network\.cni_plugin_dirs\[1\]": expected a string, got float$/);
    const g = await loadError({ 'nodecri.toml': 'shutdown_timeout = 1.0\n' });
    assert.match(g.message, /key "shutdown_timeout": expected an integer, got float$/);
  });

  it('rejects bad values, naming the file and the key', async () => {
    const cases: [string, RegExp][] = [
      ['root = "var/lib"', /key "root": expected an absolute path, got "var\/lib"/],
      ['log_level = "verbose"', /key "log_level": expected one of trace, .*, got "verbose"/],
      ['[tracing]\nsampling_rate = 1.5', /key "tracing\.sampling_rate": expected a number from 0 to 1, got 1\.5/],
      ['[metrics]\naddress = "localhost"', /key "metrics\.address": expected host:port, got "localhost"/],
      ['[cgroup]\ndriver = "systemd"', /key "cgroup\.driver": systemd is not supported yet/],
      ['[runtimes.crun]\ntype = "oci"\npath = "crun"', /key "runtimes\.crun\.path": expected an absolute path/],
    ];
    for (const [text, re] of cases) {
      const e = await loadError({ 'nodecri.toml': text });
      assert.match(e.message, /nodecri\.toml: /);
      assert.match(e.message, re);
    }
  });

  it('names the file that set a key involved in a cross-key rule', async () => {
    const e = await loadError({
      'nodecri.toml': '[runtimes.crun]\npath = "/usr/bin/crun"\n',
      'nodecri.d/50.toml': 'default_runtime = "runc"\n',
    });
    assert.match(e.message, /\/50\.toml: key "default_runtime": no runtime named "runc" \(have: native, crun\)$/);
    const f = await loadError({ 'nodecri.d/50.toml': '[runtimes.kata]\ntype = "oci"\n' });
    assert.match(f.message, /\/50\.toml: key "runtimes\.kata\.path": required for an oci runtime$/);
    const g = await loadError({ 'nodecri.d/50.toml': '[[image.registries]]\nprefix = "quay.io"\n' });
    assert.match(g.message, /\/50\.toml: key "image\.registries\[0\]\.location": required but not set$/);
  });

  it('names the flag when an override is bad', async () => {
    const e = await loadError({}, { overrides: overridesFromFlags({ runroot: 'rel' }) });
    assert.equal(e.message, 'flag --runroot: key "runroot": expected an absolute path, got "rel"');
    const f = await loadError({}, { overrides: overridesFromFlags({ cniPluginDir: ['/ok', 'bad'] }) });
    assert.match(f.message, /^flag --cni-plugin-dir: key "network\.cni_plugin_dirs\[1\]"/);
  });

  it('names the file and line of a toml syntax error', async () => {
    const e = await loadError({ 'nodecri.d/10-x.toml': 'root = "/a"\n[network\n' });
    assert.match(e.message, /\/nodecri\.d\/10-x\.toml:2:\d+: invalid toml: /);
  });
});

describe('overridesFromFlags', () => {
  it('maps flags onto config keys', () => {
    assert.deepEqual(overridesFromFlags({}), {});
    assert.deepEqual(overridesFromFlags({ metricsAddress: '' }), { metrics: { enabled: false } });
    assert.deepEqual(overridesFromFlags({ cniConfigDir: '/c', streamingAddress: '[::1]:0', listen: '/s' }), {
      listen: '/s',
      network: { cniConfigDir: '/c' },
      streaming: { address: '[::1]:0' },
    });
    assert.throws(() => overridesFromFlags({ logLevel: 'loud' }), /^ConfigError: flag --log-level: key "log_level"/);
  });

  it('passes --config and --config-dir to loadConfig', () => {
    assert.deepEqual(loadOptionsFromFlags({ config: '/c.toml', root: '/r' }), {
      file: '/c.toml',
      dir: null,
      overrides: { root: '/r' },
    });
  });
});
