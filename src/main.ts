#!/usr/bin/env node
/**
 * The nodecri command line: `nodecri` / `nodecri daemon` runs the CRI server; `version`
 * and `config` print. Daemon flags follow CRI-O's names where the meaning is the same.
 */
import { Command, Option } from 'commander';
import { ConfigError, defaultConfig, loadConfig, loadOptionsFromFlags, renderToml, type ConfigFlags } from './config';
import { startDaemon } from './daemon';
import { addonVersion } from './native/probe';
import { criApiVersion, packageVersion } from './version';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The options that shape the effective configuration, shared by `daemon` and `config`. */
function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'configuration file (default /etc/nodecri/nodecri.toml)')
    .option('--config-dir <dir>', 'drop-in directory, *.toml applied in lexical order (default /etc/nodecri/nodecri.d)')
    .option('--root <dir>', 'persistent state and images (default /var/lib/nodecri)')
    .option('--runroot <dir>', 'runtime state (default /run/nodecri)')
    .option('--listen <path>', 'CRI unix socket (default /run/nodecri/nodecri.sock)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']))
    .option('--cni-config-dir <dir>', 'CNI network configuration directory')
    .option('--cni-plugin-dir <dir>', 'CNI plugin directory (repeat for several)', collect)
    .option('--metrics-address <host:port>', 'serve /metrics on this address ("" = off)')
    .option('--streaming-address <host:port>', 'streaming server address');
}

/** Prints a start-up failure in one line (config errors already name file and key). */
function fail(e: unknown): never {
  const msg = e instanceof ConfigError ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`nodecri: ${msg}\n`);
  process.exit(1);
}

async function runDaemon(flags: ConfigFlags): Promise<void> {
  const daemon = await startDaemon(loadOptionsFromFlags(flags)).catch(fail);
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      daemon.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    daemon.log.info({ signal }, 'signal received');
    daemon.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        daemon.log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => void daemon.reload());
}

const program = new Command('nodecri')
  .description('a Kubernetes CRI v1 container runtime')
  .version(packageVersion, '-v, --version');

withConfigOptions(program.command('daemon', { isDefault: true }).description('run the CRI server (the default)')).action(runDaemon);

program
  .command('version')
  .description('print the version of nodecri, its addon and the CRI it serves')
  .action(() => {
    process.stdout.write(`nodecri ${packageVersion}\naddon ${addonVersion()}\nCRI runtime.${criApiVersion}\n`);
  });

withConfigOptions(program.command('config').description('print the effective configuration as TOML'))
  .option('--default', 'print the defaults instead')
  .action(async (flags: ConfigFlags & { default?: boolean }) => {
    if (flags.default) {
      process.stdout.write(renderToml(defaultConfig()));
      return;
    }
    const loaded = await loadConfig(loadOptionsFromFlags(flags)).catch(fail);
    process.stdout.write(renderToml(loaded.config));
  });

program.parseAsync(process.argv).catch(fail);
