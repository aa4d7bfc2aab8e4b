// Operational log (startup, reloads, health changes, errors): structured JSON lines via pino on stderr,
// so stdout stays free for the access log when both go to the console.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = process.env.PORTCULLIS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = pino({ level: 'silent' });
