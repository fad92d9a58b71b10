/**
 * The files a sandbox gives its containers: hostname, resolv.conf and hosts, written in
 * the sandbox's run dir and bind-mounted into every container of the pod.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import { writeFileAtomic } from '../state/atomic-file';

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/** resolv.conf from the pod's DNS config; with none, the host's file as it is. */
export async function resolvConf(dns: DnsConfig | null, hostFile = '/etc/resolv.conf'): Promise<string> {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) {
    try {
      return await fsp.readFile(hostFile, 'utf8');
    } catch {
      return '';
    }
  }
  const lines: string[] = [];
  if (dns.searches.length > 0) lines.push(`search ${dns.searches.join(' ')}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** /etc/hosts with the usual localhost lines and the pod's own addresses. */
export function hostsFile(hostname: string, podIps: string[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  for (const ip of podIps) lines.push(`${ip}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The pod's hostname: the one asked for; on the host network the node's; otherwise the
 * first 12 characters of the sandbox id.
 */
export function podHostname(requested: string, hostNetwork: boolean, id: string): string {
  if (requested !== '') return requested;
  if (hostNetwork) return os.hostname();
  return id.slice(0, 12);
}

export async function writeSandboxFiles(
  paths: { hostname: string; resolvConf: string; hosts: string },
  content: { hostname: string; resolvConf: string; hosts: string },
): Promise<void> {
  await Promise.all([
    // Runtime files under the run dir: no fsync (a reboot ends the pod anyway).
    writeFileAtomic(paths.hostname, `${content.hostname}\n`, 0o644, false),
    writeFileAtomic(paths.resolvConf, content.resolvConf, 0o644, false),
    writeFileAtomic(paths.hosts, content.hosts, 0o644, false),
  ]);
}
