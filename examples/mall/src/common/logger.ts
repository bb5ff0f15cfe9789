/**
 * The services' logger: one line per event on stderr with the service name, or nothing (tests).
 *
 * @module
 */

/** What the services log through; the coordinator's discovery helpers take the same shape. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

/** A logger writing `time level [name] message` lines to stderr. `quiet` drops debug and info. */
export function serviceLogger(name: string, quiet = false): Logger {
  const write = (level: string, message: string, error?: unknown) => {
    const detail = error === undefined ? '' : ` ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`${new Date().toISOString()} ${level} [${name}] ${message}${detail}\n`);
  };
  return {
    debug: () => {},
    info: (m) => (quiet ? undefined : write('info', m)),
    warn: (m) => write('warn', m),
    error: (m, e) => write('error', m, e),
  };
}
