/**
 * The cost of the gRPC layer: Version round trips per second over the daemon's unix
 * socket, serial and with 16 calls in flight, against a daemon started for the run (its
 * own temp root, run dir and socket). Usage: node dist/bench/version-rtt.js [seconds]
 */
import { CriClient } from '../test/helpers/cri-client';
import { startTestDaemon } from '../test/helpers/daemon';
import { quantile } from './stats';

async function measure(client: CriClient, concurrency: number, seconds: number): Promise<{ rps: number; p50us: number; p99us: number }> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await client.call('Version', {});
      latencies.push((performance.now() - t0) * 1000);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return {
    rps: Math.round(latencies.length / elapsed),
    p50us: Math.round(quantile(latencies, 0.5)),
    p99us: Math.round(quantile(latencies, 0.99)),
  };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const d = await startTestDaemon();
  const client = new CriClient(d.socket);
  try {
    await measure(client, 1, 0.5); // warm-up: connection, JIT
    const serial = await measure(client, 1, seconds);
    const parallel = await measure(client, 16, seconds);
    console.log(JSON.stringify({ bench: 'version-rtt', seconds, serial, concurrent16: parallel }));
    console.log(`Version serial: ${serial.rps} calls/s (p50 ${serial.p50us} µs, p99 ${serial.p99us} µs)`);
    console.log(`Version 16 in flight: ${parallel.rps} calls/s (p50 ${parallel.p50us} µs, p99 ${parallel.p99us} µs)`);
  } finally {
    client.close();
    await d.cleanup();
  }
}

void main();
