import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RuntimeError } from '../domain/errors';
import { parseGroup, parsePasswd, resolveInRoot, resolveUser, type UserRequest } from './user';

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment
broken line
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`;
const GROUP = `root:x:0:root
wheel:x:10:root,app
app:x:1000:
staff:x:50:app, other
video:x:44:
nogroup:x:65534:
`;

let dir: string;
let rootfs: string;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodecri-oci-user-'));
  rootfs = path.join(dir, 'rootfs');
  await fsp.mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await fsp.writeFile(path.join(rootfs, 'etc/passwd'), PASSWD);
  await fsp.writeFile(path.join(rootfs, 'etc/group'), GROUP);
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const req = (over: Partial<UserRequest>): UserRequest => ({
  rootfs,
  runAsUsername: '',
  runAsUser: null,
  runAsGroup: null,
  supplementalGroups: [],
  strictGroups: false,
  imageUser: null,
  ...over,
});

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof RuntimeError && e.kind === 'invalid-argument' && re.test(e.message));
}

describe('parsePasswd / parseGroup', () => {
  it('skips comments and malformed lines', () => {
    assert.deepEqual(
      parsePasswd(PASSWD).map((e) => e.name),
      ['root', 'daemon', 'app', 'nobody'],
    );
    assert.deepEqual(parseGroup(GROUP).find((g) => g.name === 'staff')?.members, ['app', 'other']);
  });
});

describe('resolveUser', () => {
  it("defaults to root with root's groups from /etc/group", async () => {
    const u = await resolveUser(req({}));
    assert.deepEqual([u.uid, u.gid, u.additionalGids, u.name, u.home], [0, 0, [0, 10], 'root', '/root']);
  });

  it('image USER forms: name, uid, name:group, uid:gid, name:gid, uid:group', async () => {
    const r = async (imageUser: string) => {
      const u = await resolveUser(req({ imageUser }));
      return [u.uid, u.gid, u.additionalGids];
    };
    assert.deepEqual(await r('app'), [1000, 1000, [1000, 10, 50]]);
    assert.deepEqual(await r('1000'), [1000, 1000, [1000, 10, 50]]);
    assert.deepEqual(await r('app:video'), [1000, 44, [44, 10, 50]]);
    assert.deepEqual(await r('1000:44'), [1000, 44, [44, 10, 50]]);
    assert.deepEqual(await r('daemon:44'), [1, 44, [44]]);
    assert.deepEqual(await r('4242:video'), [4242, 44, [44]]);
  });

  it('a numeric uid not in passwd is fine, with gid 0', async () => {
    const u = await resolveUser(req({ imageUser: '4242' }));
    assert.deepEqual([u.uid, u.gid, u.additionalGids, u.name, u.home], [4242, 0, [0], null, null]);
    const v = await resolveUser(req({ runAsUser: 5000 }));
    assert.deepEqual([v.uid, v.gid], [5000, 0]);
  });

  it('unknown names are errors naming them', async () => {
    await rejects(resolveUser(req({ imageUser: 'ghost' })), /image user: user "ghost" not found in the image's \/etc\/passwd/);
    await rejects(resolveUser(req({ imageUser: 'app:ghosts' })), /group "ghosts" not found in the image's \/etc\/group/);
    await rejects(resolveUser(req({ runAsUsername: 'ghost' })), /run_as_username: user "ghost"/);
    await rejects(resolveUser(req({ imageUser: ':video' })), /a group without a user/);
  });

  it('CRI fields win over the image user, run_as_username over run_as_user', async () => {
    const a = await resolveUser(req({ imageUser: 'daemon', runAsUser: 1000 }));
    assert.deepEqual([a.uid, a.gid], [1000, 1000]);
    const b = await resolveUser(req({ imageUser: 'daemon', runAsUser: 0, runAsUsername: 'app' }));
    assert.equal(b.uid, 1000);
    const c = await resolveUser(req({ runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [44, 3000, 7] }));
    assert.deepEqual([c.uid, c.gid, c.additionalGids], [1000, 3000, [3000, 10, 50, 44, 7]]);
    // run_as_group without a CRI user is refused (containerd's rule, which critest checks)
    await assert.rejects(resolveUser(req({ imageUser: 'app', runAsGroup: 44 })), /run_as_group is set without run_as_user/);
  });

  it('Strict supplemental groups policy ignores /etc/group membership', async () => {
    const u = await resolveUser(req({ runAsUser: 1000, strictGroups: true, supplementalGroups: [44] }));
    assert.deepEqual(u.additionalGids, [1000, 44]);
  });

  it('an image without passwd: numeric users only', async () => {
    const bare = path.join(dir, 'bare');
    await fsp.mkdir(bare);
    const u = await resolveUser(req({ rootfs: bare, imageUser: '1:2' }));
    assert.deepEqual([u.uid, u.gid, u.additionalGids], [1, 2, [2]]);
    const root = await resolveUser(req({ rootfs: bare }));
    assert.deepEqual([root.uid, root.gid, root.additionalGids], [0, 0, [0]]);
    await rejects(resolveUser(req({ rootfs: bare, imageUser: 'app' })), /user "app" not found/);
  });
});

describe('resolveInRoot', () => {
  it('resolves symlinks inside the rootfs, never outside it', async () => {
    const r = path.join(dir, 'links');
    await fsp.mkdir(path.join(r, 'private/etc'), { recursive: true });
    await fsp.mkdir(path.join(r, 'tmp'));
    await fsp.symlink('/private/etc', path.join(r, 'etc'));
    await fsp.writeFile(path.join(r, 'private/etc/passwd'), 'x:x:7:8::/x:/bin/sh\n');
    await fsp.symlink('../../../../../../../../etc/shadow', path.join(r, 'private/etc/group'));
    assert.equal(await resolveInRoot(r, '/etc/passwd'), path.join(r, 'private/etc/passwd'));
    // ../ stops at the root, and the root's /etc is itself the link to /private/etc
    assert.equal(await resolveInRoot(r, '/etc/group'), path.join(r, 'private/etc/shadow'));
    assert.equal(await resolveInRoot(r, '/tmp/../etc/passwd'), path.join(r, 'private/etc/passwd'));
    await assert.rejects(resolveInRoot(r, '/nope/../etc/passwd'), { code: 'ENOENT' });
    assert.equal(await resolveInRoot(r, '/etc/new-file'), path.join(r, 'private/etc/new-file'));
    const u = await resolveUser(req({ rootfs: r, imageUser: 'x' }));
    assert.deepEqual([u.uid, u.gid, u.additionalGids], [7, 8, [8]]);
  });

  it('stops at a symlink loop', async () => {
    const r = path.join(dir, 'loop');
    await fsp.mkdir(r);
    await fsp.symlink('/a', path.join(r, 'b'));
    await fsp.symlink('/b', path.join(r, 'a'));
    await rejects(resolveInRoot(r, '/a/x'), /too many symbolic links/);
  });
});
