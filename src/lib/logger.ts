import winston from 'winston';

export type Logger = winston.Logger;
export type LogFormat = 'text' | 'json';

/**
 * Logs go to stderr, always: stdout belongs to command output (`gofer grade --json`).
 * `text` is for a terminal; `json` is one object a line, for log collectors.
 */
export function createLogger(options: { level?: string; format?: LogFormat } = {}): Logger {
  const format =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss' }),
          winston.format.errors({ stack: true }),
          ...(process.stderr.isTTY ? [winston.format.colorize()] : []),
          winston.format.printf(({ timestamp, level, message, ...meta }) => {
            const rest = Object.keys(meta).length ? ' ' + JSON.stringify(meta) : '';
            return `${String(timestamp)} ${level} ${String(message)}${rest}`;
          }),
        );
  return winston.createLogger({
    level: options.level ?? 'info',
    format,
    transports: [
      new winston.transports.Console({
        stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
      }),
    ],
  });
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
}
