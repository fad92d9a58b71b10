import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Config, defaultConfig } from './schema';
import { validateConfig } from './validate';

/** The error message validateConfig gives for the defaults changed by `edit`, or null. */
function problem(edit: (c: Config) => void): string | null {
  const c = defaultConfig();
  edit(c);
  try {
    validateConfig(c);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

describe('validateConfig', () => {
  it('accepts the defaults, and each call gives a fresh copy', () => {
    validateConfig(defaultConfig());
    const a = defaultConfig();
    a.network.cniPluginDirs.push('/x');
    a.runtimes.native.path = '/x';
    assert.deepEqual(defaultConfig().network.cniPluginDirs, ['/opt/cni/bin', '/usr/lib/cni']);
    assert.equal(defaultConfig().runtimes.native.path, null);
  });

  it('checks host:port addresses', () => {
    for (const ok of ['127.0.0.1:9090', '0.0.0.0:0', ':9090', 'localhost:65535', '[::1]:9090', '[::]:1']) {
      assert.equal(
        problem((c) => (c.metrics.address = ok)),
        null,
        ok,
      );
    }
    for (const bad of ['127.0.0.1', '1.2.3.4:65536', '::1:9090', '[::1]', '[1.2.3.4]:1', 'a b:1', 'http://x:1', '']) {
      assert.equal(
        problem((c) => (c.streaming.address = bad)),
        `config: key "streaming.address": expected host:port, got ${JSON.stringify(bad)}`,
      );
    }
  });

  it('checks ranges and paths', () => {
    assert.match(problem((c) => (c.tracing.samplingRate = -0.1)) ?? '', /"tracing\.sampling_rate": expected a number/);
    assert.match(problem((c) => (c.tracing.samplingRate = NaN)) ?? '', /"tracing\.sampling_rate"/);
    assert.match(problem((c) => (c.image.maxConcurrentDownloads = 0)) ?? '', /"image\.max_concurrent_downloads"/);
    assert.match(problem((c) => (c.image.maxLayerRatio = -1)) ?? '', /"image\.max_layer_ratio": expected at least 0, got -1/);
    assert.match(problem((c) => (c.image.maxLayerRatioFloor = 1.5)) ?? '', /"image\.max_layer_ratio_floor": expected an integer/);
    assert.match(problem((c) => (c.image.maxLayerSize = -5)) ?? '', /"image\.max_layer_size": expected at least 0/);
    assert.match(problem((c) => (c.network.cniConfigWait = 1.5)) ?? '', /"network\.cni_config_wait": expected an integer/);
    assert.match(problem((c) => (c.cgroup.defaultParent = 'pods')) ?? '', /"cgroup\.default_parent": expected an absolute/);
    assert.match(problem((c) => (c.listen = '')) ?? '', /"listen": expected an absolute path, got ""/);
    assert.match(problem((c) => (c.tracing.endpoint = 'otel:4318')) ?? '', /"tracing\.endpoint": expected an http\(s\) url/);
    assert.match(problem((c) => (c.image.defaultRegistry = 'https://r')) ?? '', /"image\.default_registry"/);
  });

  it('takes the streaming TLS cert and key both or neither, as absolute paths', () => {
    assert.equal(
      problem((c) => Object.assign(c.streaming, { tlsCertFile: '/etc/nodecri/s.crt', tlsKeyFile: '/etc/nodecri/s.key' })),
      null,
    );
    assert.equal(
      problem((c) => (c.streaming.tlsCertFile = '/etc/nodecri/s.crt')),
      'config: key "streaming.tls_key_file": required with streaming.tls_cert_file (both or neither)',
    );
    assert.equal(
      problem((c) => (c.streaming.tlsKeyFile = '/etc/nodecri/s.key')),
      'config: key "streaming.tls_cert_file": required with streaming.tls_key_file (both or neither)',
    );
    assert.match(
      problem((c) => Object.assign(c.streaming, { tlsCertFile: 's.crt', tlsKeyFile: '/k' })) ?? '',
      /key "streaming\.tls_cert_file": expected an absolute path, got "s\.crt"/,
    );
  });

  it('takes a group name or a gid for the socket', () => {
    for (const ok of ['docker', '_kube-cri', 'machine$', '0', '4294967294']) {
      assert.equal(
        problem((c) => (c.api.socketGroup = ok)),
        null,
        ok,
      );
    }
    for (const bad of ['', '4294967295', '-1', 'a:b', 'two words', '1abc', 'x'.repeat(33)]) {
      assert.equal(
        problem((c) => (c.api.socketGroup = bad)),
        `config: key "api.socket_group": expected a group name or a numeric gid, got ${JSON.stringify(bad)}`,
      );
    }
  });

  it('checks rules across keys', () => {
    assert.equal(
      problem((c) => (c.defaultRuntime = 'runc')),
      'config: key "default_runtime": no runtime named "runc" (have: native)',
    );
    assert.equal(
      problem((c) => (c.runtimes.crun = { type: 'oci', path: null, root: null })),
      'config: key "runtimes.crun.path": required for an oci runtime',
    );
    assert.match(problem((c) => (c.runtimes['Crun'] = { type: 'oci', path: '/c', root: null })) ?? '', /key "runtimes\.Crun": expected a dns label/);
    const reg = { prefix: null, location: 'r.io', insecure: false, blocked: false, mirrors: [] };
    assert.equal(
      problem((c) => (c.image.registries = [reg, { ...reg, prefix: 'r.io', location: 'other.io' }])),
      'config: key "image.registries[1].prefix": prefix "r.io" already used by registries[0]',
    );
  });
});
