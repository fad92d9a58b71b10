/**
 * The static busybox the test images and rootfs are built from: scripts/install-deps.sh
 * unpacks Debian's busybox-static there, whichever busybox package the machine has.
 */
import fs from 'node:fs';

const installed = '/usr/local/lib/nodecri/busybox-static';

export const staticBusybox: string = fs.existsSync(installed) ? installed : '/bin/busybox';
