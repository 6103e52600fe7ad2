import type { ChildProcess } from 'node:child_process';

export const VHOST: string;
export const hasNginx: boolean;
export function freePort(): Promise<number>;
export function vhostFor(upstreams: string[], port: number): Promise<string>;
export interface RunningNginx {
  url: string;
  dir: string;
  args: string[];
  child?: ChildProcess;
  stop(): Promise<void>;
}
export function startNginx(
  upstreams: string[],
  options?: { dir?: string; workers?: number | 'auto'; start?: boolean },
): Promise<RunningNginx>;
