import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '../../src/lib/logger.js';

export interface LogEntry {
  level: string;
  message: string;
  [key: string]: unknown;
}

/** A real winston logger that keeps what it is given, so a test can read the log lines. */
export function capturingLogger(): { log: Logger; entries: LogEntry[]; count(level: string, pattern: RegExp): number } {
  const entries: LogEntry[] = [];
  const keep = new Writable({
    objectMode: true,
    write(info: LogEntry, _enc, cb) {
      entries.push(info);
      cb();
    },
  });
  const log = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: keep })] });
  return { log, entries, count: (level, pattern) => entries.filter((e) => e.level === level && pattern.test(e.message)).length };
}
