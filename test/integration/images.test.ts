/**
 * The ImageService against real registries (Debian's docker-registry on 127.0.0.1), through
 * the daemon's CRI socket: pulls by tag, digest and index, auth, errors, mirrors and
 * insecure registries, shared downloads, overlay-ready layers checked through a real
 * overlay mount, refused escapes, kill -9 mid-pull, removal rules, and offline import.
 * Each test runs its own daemon in its own temp dir; the registries are shared.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { defaultConfig } from '../../src/config';
import { ImageService } from '../../src/image/service';
import { lgetxattr } from '../../src/native/fs';
import { createLogger } from '../../src/obs/logger';
import { CriClient } from '../helpers/cri-client';
import { mainJs, makeTempDir, startTestDaemon, type TestDaemon } from '../helpers/daemon';
import {
  assembleImage,
  buildImage,
  buildIndex,
  buildLayer,
  busyboxLayer,
  dockerArchive,
  filesLayer,
  noise,
  pushImage,
  pushIndex,
  tarOfDir,
  writeOciLayout,
  type BuiltImage,
} from '../helpers/images';
import { startProxy, startRegistry, type TestRegistry } from '../helpers/registry';

let reg: TestRegistry;
let authReg: TestRegistry;
const creds = { username: 'tester', password: 's3cret' };

// Fixtures, pushed once.
let busybox: BuiltImage; // 2 layers: busybox base + a files layer; pushed as test/busybox:1.0 and :2.0
let arm: BuiltImage; // the arm64 twin inside the index
let index: ReturnType<typeof buildIndex>;
let whiteouts: BuiltImage;
let big: BuiltImage; // base + 4 MiB of noise, for the kill -9 test
let decoy: ReturnType<typeof buildLayer>;

before(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ auth: creds });
  busybox = buildImage([busyboxLayer(), filesLayer({ 'etc/motd': 'welcome\n', 'app/data.txt': 'data\n' })]);
  await pushImage(reg.host, 'test/busybox', '1.0', busybox);
  await pushImage(reg.host, 'test/busybox', '2.0', busybox, { chunked: true });
  arm = assembleImage(busybox.layers, { architecture: 'arm64' });
  index = buildIndex([
    { image: arm, architecture: 'arm64', variant: 'v8' },
    { image: busybox, architecture: 'amd64' },
  ]);
  await pushIndex(reg.host, 'test/multi', 'latest', index, [arm, busybox]);
  await pushImage(authReg.host, 'private/busybox', '1.0', busybox, { auth: creds });

  whiteouts = buildImage([
    [...busyboxLayer(), ...filesLayer({ 'a/x': 'x\n', 'a/y': 'y\n', 'b/keep': 'keep\n', 'b/old': 'old\n', gone: 'gone\n' })],
    filesLayer({ '.wh.gone': '', 'a/.wh..wh..opq': '', 'a/new': 'new\n', 'b/.wh.old': '' }),
  ]);
  await pushImage(reg.host, 'test/whiteouts', 'v1', whiteouts);
  big = buildImage([busyboxLayer(), [{ name: 'noise.bin', type: 'file', mode: 0o644, data: noise(4 << 20, 'big') }]]);
  await pushImage(reg.host, 'test/big', 'v1', big);
  decoy = buildLayer(filesLayer({ 'decoy.txt': 'not what the manifest says\n' }));
});

after(async () => {
  await reg?.stop();
  await authReg?.stop();
});

/** A daemon whose [image] section lists `registries` (TOML tables) and extra keys. */
async function daemonWith(opts: { registries?: string[]; image?: string; dir?: string; metrics?: boolean } = {}): Promise<TestDaemon> {
  const toml = `[image]\n${opts.image ?? 'pull_timeout = 30'}\n${(opts.registries ?? []).map((r) => `[[image.registries]]\n${r}`).join('\n')}\n`;
  return startTestDaemon({ dropIns: { '50-images.toml': toml }, dir: opts.dir, args: opts.metrics ? ['--metrics-address', '127.0.0.1:0'] : [] });
}

const insecure = (host: string) => `location = "${host}"\ninsecure = true\n`;

/** Runs `body` with a daemon and a client; always stops and cleans both. */
async function withDaemon(d: TestDaemon, body: (client: CriClient) => Promise<void>): Promise<void> {
  const client = new CriClient(d.socket);
  try {
    await body(client);
  } finally {
    client.close();
    await d.cleanup();
  }
}

function ls(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function grpcError(code: Status, pattern: RegExp) {
  return (e: ServiceError) => {
    assert.equal(e.code, code, `${Status[e.code]}: ${e.details}`);
    assert.match(e.details, pattern);
    return true;
  };
}

test('pull by tag, by digest and of a multi-arch index; list and status; a second pull is a no-op', async () => {
  const proxy = await startProxy(reg.host);
  const d = await daemonWith({ registries: [insecure(proxy.host)], metrics: true });
  try {
    await withDaemon(d, async (c) => {
      const name = `${proxy.host}/test/busybox`;
      const pulled = await c.call('PullImage', { image: { image: `${name}:1.0` } });
      assert.equal(pulled.image_ref, busybox.configDigest);

      const list = await c.call('ListImages', {});
      assert.equal(list.images.length, 1);
      const img = list.images[0];
      assert.equal(img.id, busybox.configDigest);
      assert.deepEqual(img.repo_tags, [`${name}:1.0`]);
      assert.deepEqual(img.repo_digests, [`${name}@${busybox.manifestDigest}`]);
      assert.equal(img.uid?.value, '1000');
      assert.ok(Number(img.size) > 500_000);

      const st = await c.call('ImageStatus', { image: { image: `${name}:1.0` }, verbose: true });
      assert.equal(st.image?.id, busybox.configDigest);
      const info = JSON.parse(st.info.info) as { imageSpec: { config: { Env: string[]; Cmd: string[]; WorkingDir: string } }; chainIDs: string[] };
      assert.deepEqual(info.imageSpec.config.Cmd, ['/bin/sh']);
      assert.ok(info.imageSpec.config.Env.includes('GREETING=hello'));
      assert.equal(info.imageSpec.config.WorkingDir, '/home/app');
      assert.equal(info.chainIDs.length, 2);
      assert.equal(ls(path.join(d.root, 'images', 'layers')).length, 2);

      // Unknown images are an empty answer, not an error.
      const none = await c.call('ImageStatus', { image: { image: `${name}:nope` } });
      assert.equal(none.image, null);

      // Second pull: the manifest is resolved again, no blob is fetched.
      const blobGets = () => proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
      const before = blobGets();
      assert.equal((await c.call('PullImage', { image: { image: `${name}:1.0` } })).image_ref, busybox.configDigest);
      assert.equal(blobGets(), before);

      // By digest: same image, a second repo digest is not added (same manifest).
      assert.equal((await c.call('PullImage', { image: { image: `${name}@${busybox.manifestDigest}` } })).image_ref, busybox.configDigest);
      assert.equal(blobGets(), before);
      const byDigest = await c.call('ImageStatus', { image: { image: `${name}@${busybox.manifestDigest}` } });
      assert.equal(byDigest.image?.id, busybox.configDigest);

      // The index: this machine's (amd64) image is chosen; the repo digest is the index's.
      assert.equal(os.arch(), 'x64');
      const multi = await c.call('PullImage', { image: { image: `${proxy.host}/test/multi:latest` } });
      assert.equal(multi.image_ref, busybox.configDigest);
      const again = await c.call('ImageStatus', { image: { image: `${proxy.host}/test/multi@${index.digest}` } });
      assert.equal(again.image?.id, busybox.configDigest);
      assert.ok(again.image?.repo_tags.includes(`${proxy.host}/test/multi:latest`));
      assert.equal(proxy.requests.filter((r) => r.path.endsWith(arm.configDigest)).length, 0);

      // Filtered list, stream and fs info.
      assert.equal((await c.call('ListImages', { filter: { image: { image: `${name}:1.0` } } })).images.length, 1);
      assert.equal((await c.call('ListImages', { filter: { image: { image: `${name}:9` } } })).images.length, 0);
      const streamed = await c.stream('StreamImages', {});
      assert.equal(streamed.flatMap((m) => m.images).length, 1);
      const fsInfo = await c.call('ImageFsInfo', {});
      assert.equal(fsInfo.image_filesystems[0].fs_id?.mountpoint, path.join(d.root, 'images'));
      assert.ok(Number(fsInfo.image_filesystems[0].used_bytes?.value) > 500_000);
      assert.ok(Number(fsInfo.image_filesystems[0].inodes_used?.value) > 10);

      const metrics = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
      assert.match(metrics, /nodecri_image_pulls_total\{result="success"\} 4/);
      assert.match(metrics, /nodecri_image_pull_bytes_total \d{6,}/);
      assert.match(metrics, /nodecri_image_pull_duration_seconds_count 4/);
    });
  } finally {
    await proxy.stop();
  }
});

test('basic auth: the right password pulls; a wrong one is UNAUTHENTICATED naming the registry', async () => {
  await withDaemon(await daemonWith({ registries: [insecure(authReg.host)] }), async (c) => {
    const image = { image: `${authReg.host}/private/busybox:1.0` };
    await assert.rejects(c.call('PullImage', { image }), grpcError(Status.UNAUTHENTICATED, new RegExp(`registry ${authReg.host}`)));
    await assert.rejects(
      c.call('PullImage', { image, auth: { username: creds.username, password: 'wrong' } }),
      grpcError(Status.UNAUTHENTICATED, new RegExp(`registry ${authReg.host} refused the credentials`)),
    );
    const ok = await c.call('PullImage', { image, auth: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } });
    assert.equal(ok.image_ref, busybox.configDigest);
  });
});

test('a missing tag says manifest unknown; a registry that is down fails within the timeout', async () => {
  // A server that accepts connections and never answers.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentHost = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedHost = `127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    const d = await daemonWith({ image: 'pull_timeout = 2', registries: [insecure(reg.host), insecure(silentHost), insecure(closedHost)] });
    await withDaemon(d, async (c) => {
      await assert.rejects(
        c.call('PullImage', { image: { image: `${reg.host}/test/busybox:missing` } }),
        grpcError(Status.NOT_FOUND, new RegExp(`manifest unknown: ${reg.host}/test/busybox:missing`)),
      );
      await assert.rejects(c.call('PullImage', { image: { image: `${closedHost}/x:1` } }), grpcError(Status.UNAVAILABLE, new RegExp(`registry ${closedHost} unreachable`)));
      const t0 = Date.now();
      await assert.rejects(c.call('PullImage', { image: { image: `${silentHost}/x:1` } }), (e: ServiceError) => {
        assert.ok(e.code === Status.DEADLINE_EXCEEDED || e.code === Status.UNAVAILABLE, e.details);
        assert.match(e.details, new RegExp(silentHost));
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took >= 1900, `the pull waited its 2 s pull_timeout (${took} ms)`);
      assert.deepEqual((await c.call('ListImages', {})).images, []);
    });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

test('a blob whose digest does not match fails and leaves nothing behind', async () => {
  // The proxy answers the files layer with another (valid) gzip tar.
  const wanted = busybox.layers[1].digest;
  const proxy = await startProxy(reg.host, { rewrite: (r) => (r.path.endsWith(`/blobs/${wanted}`) ? decoy.blob : null) });
  try {
    const d = await daemonWith({ registries: [insecure(proxy.host)] });
    await withDaemon(d, async (c) => {
      await assert.rejects(
        c.call('PullImage', { image: { image: `${proxy.host}/test/busybox:1.0` } }),
        grpcError(Status.FAILED_PRECONDITION, new RegExp(`digest mismatch for layer ${wanted}.*expected ${wanted}, got ${decoy.digest}`)),
      );
      assert.deepEqual((await c.call('ListImages', {})).images, []);
      for (const sub of ['layers', 'images', 'tmp', 'blobs/sha256']) assert.deepEqual(ls(path.join(d.root, 'images', sub)), [], sub);
    });
  } finally {
    await proxy.stop();
  }
});

test('a mirror serves a pull; an insecure registry works only when listed', async () => {
  const mirrored = [
    `prefix = "registry.example.invalid"\nlocation = "registry.example.invalid"\nblocked = true\nmirrors = [{ location = "${reg.host}", insecure = true }]\n`,
    `prefix = "rewritten.example.invalid"\nlocation = "${reg.host}/test"\ninsecure = true\n`,
  ];
  await withDaemon(await daemonWith({ registries: mirrored }), async (c) => {
    const r = await c.call('PullImage', { image: { image: 'registry.example.invalid/test/busybox:1.0' } });
    assert.equal(r.image_ref, busybox.configDigest);
    const st = await c.call('ImageStatus', { image: { image: 'registry.example.invalid/test/busybox:1.0' } });
    assert.deepEqual(st.image?.repo_tags, ['registry.example.invalid/test/busybox:1.0']);
    // A location with a path rewrites the name: rewritten.example.invalid/busybox -> HOST/test/busybox.
    assert.equal((await c.call('PullImage', { image: { image: 'rewritten.example.invalid/busybox:2.0' } })).image_ref, busybox.configDigest);
  });
  await withDaemon(await daemonWith(), async (c) => {
    await assert.rejects(c.call('PullImage', { image: { image: `${reg.host}/test/busybox:1.0` } }), grpcError(Status.UNAVAILABLE, new RegExp(`registry ${reg.host}`)));
  });
});

test('10 concurrent pulls of one image make one download and all succeed', async () => {
  const proxy = await startProxy(reg.host);
  try {
    await withDaemon(await daemonWith({ registries: [insecure(proxy.host)] }), async (c) => {
      const clients = Array.from({ length: 10 }, () => new CriClient(c.socketPath));
      try {
        const results = await Promise.all(clients.map((k) => k.call('PullImage', { image: { image: `${proxy.host}/test/big:v1` } })));
        for (const r of results) assert.equal(r.image_ref, big.configDigest);
      } finally {
        for (const k of clients) k.close();
      }
      for (const l of big.layers) assert.equal(proxy.blobGets(l.digest), 1, l.digest);
      assert.equal(proxy.blobGets(big.configDigest), 1);
      assert.equal(proxy.requests.filter((r) => r.path.includes('/manifests/')).length, 1);
    });
  } finally {
    await proxy.stop();
  }
});

test('whiteouts and opaque dirs give the right merged view through a real overlay mount', async () => {
  const d = await daemonWith({ registries: [insecure(reg.host)] });
  await withDaemon(d, async (c) => {
    const { image_ref: id } = await c.call('PullImage', { image: { image: `${reg.host}/test/whiteouts:v1` } });
    const svc = await ImageService.open({ root: d.root, config: () => defaultConfig().image, log: createLogger('warn'), metrics: null, userAgent: 'test', daemon: false });
    const merged = fs.mkdtempSync(path.join(d.dir, 'merged-'));
    let mounted = false;
    try {
      const dirs = await svc.prepareRootfs(id, 'c-whiteouts');
      assert.equal(dirs.lowerDirs.length, 2);
      // The top layer holds overlay whiteouts: 0:0 char devices and the opaque xattr.
      const top = dirs.lowerDirs[0];
      const wh = fs.lstatSync(path.join(top, 'gone'));
      assert.ok(wh.isCharacterDevice());
      assert.equal(wh.rdev, 0);
      assert.equal((await lgetxattr(path.join(top, 'a'), 'trusted.overlay.opaque'))?.toString(), 'y');
      // Ownership, modes, links from the base layer.
      const base = dirs.lowerDirs[1];
      assert.equal(fs.statSync(path.join(base, 'home/app')).uid, 1000);
      assert.equal(fs.statSync(path.join(base, 'tmp')).mode & 0o7777, 0o1777);
      assert.equal(fs.statSync(path.join(base, 'bin/ls')).ino, fs.statSync(path.join(base, 'bin/busybox')).ino);
      assert.equal(fs.readlinkSync(path.join(base, 'usr/bin/env')), '/bin/busybox');
      assert.equal(fs.statSync(path.join(base, 'etc/passwd')).mtimeMs, 1_677_628_800_000);

      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dirs.lowerDirs.join(':')},upperdir=${dirs.upperDir},workdir=${dirs.workDir}`, merged]);
      mounted = true;
      assert.ok(!fs.existsSync(path.join(merged, 'gone')));
      assert.deepEqual(fs.readdirSync(path.join(merged, 'a')).sort(), ['new']);
      assert.deepEqual(fs.readdirSync(path.join(merged, 'b')).sort(), ['keep']);
      assert.equal(fs.readFileSync(path.join(merged, 'etc/passwd'), 'utf8').split('\n')[1].split(':')[0], 'app');
      const sh = spawnSync('chroot', [merged, '/bin/sh', '-c', 'ls /a; id -u app'], { encoding: 'utf8' });
      assert.equal(sh.stdout, 'new\n1000\n', sh.stderr);
    } finally {
      if (mounted) execFileSync('umount', [merged]);
      await svc.releaseRootfs('c-whiteouts');
      svc.close();
    }
    assert.deepEqual(ls(path.join(d.root, 'images', 'rootfs')), []);
  });
});

test('layers that would escape their directory are refused and nothing is stored', async () => {
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-outside-'));
  try {
    const dotdot = buildImage([
      [
        { name: 'ok.txt', type: 'file', data: Buffer.from('ok') },
        { name: '../escape', type: 'file', data: Buffer.from('x') },
      ],
    ]);
    const viaLink = buildImage([
      [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/pwned', type: 'file', data: Buffer.from('x') },
      ],
    ]);
    const hardlink = buildImage([[{ name: 'h', type: 'link', linkname: '/etc/shadow' }]]);
    await pushImage(reg.host, 'test/evil', 'dotdot', dotdot);
    await pushImage(reg.host, 'test/evil', 'link', viaLink);
    await pushImage(reg.host, 'test/evil', 'hardlink', hardlink);
    const d = await daemonWith({ registries: [insecure(reg.host)] });
    await withDaemon(d, async (c) => {
      const pull = (tag: string) => c.call('PullImage', { image: { image: `${reg.host}/test/evil:${tag}` } });
      await assert.rejects(pull('dotdot'), grpcError(Status.INVALID_ARGUMENT, /refusing layer: tar entry "\.\.\/escape" has a "\.\." component/));
      await assert.rejects(pull('link'), grpcError(Status.INVALID_ARGUMENT, /goes through the symlink "link"/));
      await assert.rejects(pull('hardlink'), grpcError(Status.INVALID_ARGUMENT, /hard link "h" points to "\/etc\/shadow", which is not a file of this layer/));
      assert.deepEqual(fs.readdirSync(outside), []);
      assert.ok(!fs.existsSync(path.join(d.root, 'images', 'escape')));
      for (const sub of ['layers', 'images', 'tmp']) assert.deepEqual(ls(path.join(d.root, 'images', sub)), [], sub);
    });
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
  }
});

test('kill -9 in the middle of a pull: no partial image after restart, and the pull can be repeated', async () => {
  const noiseLayer = big.layers[1].digest;
  const proxy = await startProxy(reg.host, { rewrite: (r) => (r.path.endsWith(`/blobs/${noiseLayer}`) ? 'stall' : null) });
  try {
    const first = await daemonWith({ registries: [insecure(proxy.host)] });
    const client = new CriClient(first.socket);
    const image = { image: `${proxy.host}/test/big:v1` };
    const pending = client.call('PullImage', { image }).then(
      () => 'succeeded',
      () => 'failed',
    );
    await proxy.stalled;
    // Let the base layer finish too, so a committed layer without an image is on disk.
    const baseDir = path.join(first.root, 'images', 'layers', big.layers[0].diffId.slice(7));
    for (let i = 0; i < 100 && !fs.existsSync(baseDir); i++) await new Promise((r) => setTimeout(r, 50));
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.equal(await pending, 'failed');
    client.close();
    assert.ok(ls(path.join(first.root, 'images', 'tmp')).length > 0, 'the half-written layer is in tmp');
    assert.deepEqual(ls(path.join(first.root, 'images', 'images')), []);

    proxy.hooks.rewrite = () => null;
    const second = await daemonWith({ registries: [insecure(proxy.host)], dir: first.dir });
    try {
      await withDaemon(second, async (c) => {
        assert.deepEqual((await c.call('ListImages', {})).images, []);
        assert.deepEqual(ls(path.join(second.root, 'images', 'tmp')), []);
        assert.deepEqual(ls(path.join(second.root, 'images', 'layers')), [], 'the orphan layer is collected');
        assert.equal((await c.call('PullImage', { image })).image_ref, big.configDigest);
        const st = await c.call('ImageStatus', { image });
        assert.equal(st.image?.id, big.configDigest);
        assert.equal(
          fs.statSync(
            path.join(
              second.root,
              'images',
              'layers',
              (JSON.parse((await c.call('ImageStatus', { image, verbose: true })).info.info) as { chainIDs: string[] }).chainIDs[1].slice(7),
              'diff',
              'noise.bin',
            ),
          ).size,
          4 << 20,
        );
      });
    } finally {
      fs.rmSync(first.dir, { recursive: true, force: true });
    }
  } finally {
    await proxy.stop();
  }
});

test('RemoveImage: untag, refused while a container uses the image, layers gone after the last removal', async () => {
  const d = await daemonWith({ registries: [insecure(reg.host)] });
  await withDaemon(d, async (c) => {
    const name = `${reg.host}/test/busybox`;
    await c.call('PullImage', { image: { image: `${name}:1.0` } });
    await c.call('PullImage', { image: { image: `${name}:2.0` } });
    const st = await c.call('ImageStatus', { image: { image: `${name}:1.0` } });
    assert.deepEqual(st.image?.repo_tags.sort(), [`${name}:1.0`, `${name}:2.0`]);

    const svc = await ImageService.open({ root: d.root, config: () => defaultConfig().image, log: createLogger('warn'), metrics: null, userAgent: 'test', daemon: false });
    try {
      await svc.prepareRootfs(`${name}:1.0`, 'ctr1');
      // A tag of an image with another tag is only untagged.
      await c.call('RemoveImage', { image: { image: `${name}:1.0` } });
      assert.deepEqual((await c.call('ImageStatus', { image: { image: busybox.configDigest } })).image?.repo_tags, [`${name}:2.0`]);
      await assert.rejects(
        c.call('RemoveImage', { image: { image: busybox.configDigest } }),
        grpcError(Status.FAILED_PRECONDITION, new RegExp(`image ${busybox.configDigest} \\(${name}:2.0\\) is in use by container ctr1`)),
      );
      await svc.releaseRootfs('ctr1');
    } finally {
      svc.close();
    }
    await c.call('RemoveImage', { image: { image: `${name}:2.0` } });
    assert.deepEqual((await c.call('ListImages', {})).images, []);
    for (const sub of ['layers', 'images', 'blobs/sha256', 'rootfs']) assert.deepEqual(ls(path.join(d.root, 'images', sub)), [], sub);
    // Unknown images are removed without error.
    await c.call('RemoveImage', { image: { image: `${name}:1.0` } });
  });
});

test('offline import of an OCI layout (dir and tar) and a docker archive; the daemon sees them and keeps them', async () => {
  const dir = makeTempDir();
  const d = await daemonWith({ dir });
  const work = fs.mkdtempSync(path.join(d.dir, 'import-'));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [mainJs, 'image', ...args, '--root', d.root, '--config', d.configFile, '--config-dir', d.configDir], { encoding: 'utf8' });
  const layoutDir = path.join(work, 'layout');
  writeOciLayout(layoutDir, whiteouts, 'registry.k8s.io/e2e/whiteouts:1.0');
  const layoutTar = path.join(work, 'layout.tar');
  const other = buildImage([busyboxLayer(), filesLayer({ 'other.txt': 'other\n' })], { docker: true });
  const otherLayout = path.join(work, 'other');
  writeOciLayout(otherLayout, other, 'docker.io/library/other:2');
  fs.writeFileSync(layoutTar, tarOfDir(otherLayout));
  const archive = path.join(work, 'saved.tar');
  fs.writeFileSync(archive, dockerArchive(busybox, ['busybox:latest', 'example.com/tools/busybox:1.36']));

  await withDaemon(d, async (c) => {
    let r = cli('import', layoutDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`imported ${whiteouts.configDigest} \\(registry.k8s.io/e2e/whiteouts:1.0\\)`));
    r = cli('import', layoutTar);
    assert.equal(r.status, 0, r.stderr);
    r = cli('import', archive, '--tag', 'local/extra:1');
    assert.equal(r.status, 0, r.stderr);

    // The running daemon sees what the command wrote.
    const st = await c.call('ImageStatus', { image: { image: 'busybox' } });
    assert.equal(st.image?.id, busybox.configDigest);
    assert.deepEqual(st.image?.repo_tags.sort(), ['docker.io/library/busybox:latest', 'docker.io/local/extra:1', 'example.com/tools/busybox:1.36']);
    assert.equal((await c.call('ImageStatus', { image: { image: 'registry.k8s.io/e2e/whiteouts:1.0' } })).image?.id, whiteouts.configDigest);
    assert.equal((await c.call('ImageStatus', { image: { image: 'other:2' } })).image?.id, other.configDigest);
    assert.equal((await c.call('ListImages', {})).images.length, 3);

    const table = cli('ls');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE\n/);
    assert.match(table.stdout, new RegExp(`registry.k8s.io/e2e/whiteouts\\s+1.0\\s+${whiteouts.configDigest.slice(7, 19)}`));
  });
  // Imported images survive a restart.
  const again = await daemonWith({ dir: d.dir });
  try {
    await withDaemon(again, async (c) => {
      assert.equal((await c.call('ListImages', {})).images.length, 3);
    });
  } finally {
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
});
