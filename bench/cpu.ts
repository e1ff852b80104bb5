/**
 * Where the CPU went during a measured run: the server process (every thread, so argon2's
 * libuv pool too), this process (the load generator), and the rest of the machine (PostgreSQL's
 * backends, anything else running). Read from /proc, Linux only; elsewhere it is not reported.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU use over a run, in cores (CPU seconds per wall-clock second). */
export interface CpuShares {
  server: number;
  loadGenerator: number;
  /** Busy time of the whole machine minus the two above. */
  rest: number;
  /** The server's CPU seconds, for per-request figures. */
  serverSeconds: number;
}

let ticksPerSecond: number | null | undefined;

function clockTicks(): number | null {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || null;
    } catch {
      ticksPerSecond = null;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of a process, in seconds. */
function processSeconds(pid: number, hz: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / hz;
}

/** Busy seconds of all cores together (everything but idle and iowait). */
function machineBusySeconds(hz: number): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number) as number[];
  void idle;
  void iowait;
  return (user! + nice! + system! + irq! + softirq! + steal!) / hz;
}

/** Starts counting; the returned function stops and gives the shares, or null where /proc is not readable. */
export function startCpuCount(serverPid: number): () => CpuShares | null {
  const hz = clockTicks();
  if (hz === null) return () => null;
  let start: { wall: number; server: number; self: NodeJS.CpuUsage; machine: number };
  try {
    start = { wall: performance.now(), server: processSeconds(serverPid, hz), self: process.cpuUsage(), machine: machineBusySeconds(hz) };
  } catch {
    return () => null;
  }
  return () => {
    try {
      const wall = (performance.now() - start.wall) / 1000;
      const serverSeconds = processSeconds(serverPid, hz) - start.server;
      const self = process.cpuUsage(start.self);
      const selfSeconds = (self.user + self.system) / 1e6;
      const machine = machineBusySeconds(hz) - start.machine;
      return {
        server: serverSeconds / wall,
        loadGenerator: selfSeconds / wall,
        rest: Math.max(0, machine - serverSeconds - selfSeconds) / wall,
        serverSeconds,
      };
    } catch {
      return null;
    }
  };
}
