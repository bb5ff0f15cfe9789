/** Structured logger: one JSON object per line, carrying the gid where there is one. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = defaultWrite): Logger {
  const min = ORDER[level];
  const log = (lv: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lv] < min) return;
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: lv, msg, ...fields })}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function defaultWrite(line: string): void {
  process.stderr.write(line);
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
