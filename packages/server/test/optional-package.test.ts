/**
 * loadOptional: a missing optional package becomes a MissingPackageError naming it and the command to install
 * it; any other failure of the import passes through unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config.js';
import { isInstalled, loadOptional, MissingPackageError, type OptionalPackage } from '../src/optional-package.js';

const absent = 'dtx-test-no-such-package' as OptionalPackage;

describe('loadOptional', () => {
  it('names the missing package and how to install it', async () => {
    assert.equal(isInstalled(absent), false);
    const err = await loadOptional('Store.Driver=nothing', [absent], () => import(absent)).catch((e: unknown) => e);
    assert.ok(err instanceof MissingPackageError);
    assert.ok(err instanceof ConfigError, 'dtx serve prints it as a configuration error');
    assert.deepEqual(err.packages, [absent]);
    assert.match(err.message, new RegExp(`^Store\\.Driver=nothing needs the "${absent}" package: npm i ${absent} `));
  });

  it('names only the packages that are missing', async () => {
    assert.equal(isInstalled('pg'), true);
    const err = await loadOptional('a feature', ['pg', absent], () => import(absent)).catch((e: unknown) => e);
    assert.ok(err instanceof MissingPackageError);
    assert.deepEqual(err.packages, [absent]);
  });

  it('passes through a module-not-found of something else, and any other error', async () => {
    const file = './no-such-module.js'; // a variable: the compiler does not resolve it
    const missingFile = await loadOptional('a feature', ['pg'], () => import(file)).catch((e: unknown) => e);
    assert.equal((missingFile as { code?: string }).code, 'ERR_MODULE_NOT_FOUND');
    assert.ok(!(missingFile instanceof MissingPackageError));
    const boom = new Error('boom');
    await assert.rejects(
      loadOptional('a feature', ['pg'], () => Promise.reject(boom)),
      (e) => e === boom,
    );
  });

  it('returns what the import gives when the package is there', async () => {
    const pg = await loadOptional('Store.Driver=postgres', ['pg'], () => import('pg'));
    assert.equal(typeof pg.default.Pool, 'function');
  });
});
