/**
 * The packages dtx loads only when the configuration asks for them — the drivers of the production stores,
 * etcd for discovery and the OpenTelemetry SDK — are optional peer dependencies of `@dtx/server`: an
 * install for the embedded SQLite store carries none of them. Each is imported at its point of use through
 * {@link loadOptional}, which turns a missing package into an error naming the package to install.
 *
 * @module
 */
import { ConfigError } from './util/config-error.js';

/** The optional packages, with the feature that needs each (for the message when one is missing). */
export const OPTIONAL_PACKAGES = {
  pg: 'Store.Driver=postgres',
  mysql2: 'Store.Driver=mysql',
  ioredis: 'Store.Driver=redis',
  etcd3: 'etcd discovery (MicroService.Target etcd://…, or an etcd://, discov:// or discovery:// branch)',
  '@opentelemetry/api': 'Tracing.Exporter',
  '@opentelemetry/core': 'Tracing.Exporter',
  '@opentelemetry/resources': 'Tracing.Exporter',
  '@opentelemetry/sdk-trace-base': 'Tracing.Exporter',
  '@opentelemetry/exporter-trace-otlp-http': 'Tracing.Exporter',
} as const;

/** A package of {@link OPTIONAL_PACKAGES}. */
export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

/**
 * An optional package that a configured feature needs is not installed. A {@link ConfigError}: `dtx serve` stops
 * with its message, e.g. `Store.Driver=postgres needs the "pg" package: npm i pg`.
 */
export class MissingPackageError extends ConfigError {
  /** The packages to install (the first one found missing, and those of the same feature). */
  readonly packages: readonly string[];

  constructor(feature: string, packages: readonly string[]) {
    const names = packages.map((p) => `"${p}"`).join(', ');
    super(
      `${feature} needs the ${names} package${packages.length > 1 ? 's' : ''}: npm i ${packages.join(' ')}` +
        ' (optional peer dependencies of @dtx/server, installed only for the features that use them)',
    );
    this.name = 'MissingPackageError';
    this.packages = packages;
  }
}

/** Whether `name` can be resolved from this package (without loading it). */
export function isInstalled(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `load` (a dynamic `import()` of a module that imports `packages`) and, when it fails because one of them
 * is not installed, throws a {@link MissingPackageError} naming every missing one of `packages` instead of Node's
 * `Cannot find package` error. Other errors pass through.
 * @param feature names what needs the packages in the message, e.g. `Store.Driver=postgres`.
 */
export async function loadOptional<T>(
  feature: string,
  packages: readonly OptionalPackage[],
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    const missing = packages.filter((p) => !isInstalled(p));
    if (missing.length === 0) throw err;
    throw new MissingPackageError(feature, missing);
  }
}
