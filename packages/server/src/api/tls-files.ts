import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../util/config-error.js';

/** The PEM files of one TLS listener. */
export interface TlsConfig {
  CertFile: string;
  KeyFile: string;
  ClientCaFile: string;
}

/** The TLS keys of the listeners (config `HttpTls`, `GrpcTls`). */
export interface ListenerTlsConfig {
  HttpTls: TlsConfig;
  GrpcTls: TlsConfig;
}

/** The PEM material of one TLS listener; `ca` set means client certificates are required (mTLS). */
export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
}

function read(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read '${path}': ${(err as Error).message}`);
  }
}

/** Every PEM certificate of a bundle must parse; Node would silently skip a broken CA. */
function checkCertificates(key: string, path: string, pem: Buffer): void {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${key}: '${path}' holds no PEM certificate`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`${key}: '${path}' holds a certificate that does not parse: ${(err as Error).message}`);
    }
  }
}

/** Read and check one listener's files; undefined when `CertFile` is not set (plain TCP). */
export function loadTls(name: string, t: TlsConfig): TlsMaterial | undefined {
  if (t.CertFile === '') return undefined;
  const cert = read(`${name}.CertFile`, t.CertFile);
  checkCertificates(`${name}.CertFile`, t.CertFile, cert);
  const key = read(`${name}.KeyFile`, t.KeyFile);
  try {
    createSecureContext({ key, cert });
  } catch (err) {
    throw new ConfigError(
      `${name}.KeyFile: '${t.KeyFile}' is not a PEM private key matching ${name}.CertFile '${t.CertFile}': ${(err as Error).message}`,
    );
  }
  if (t.ClientCaFile === '') return { key, cert };
  const ca = read(`${name}.ClientCaFile`, t.ClientCaFile);
  checkCertificates(`${name}.ClientCaFile`, t.ClientCaFile, ca);
  return { key, cert, ca };
}

/** HttpTls for HTTPS, and GrpcTls for gRPC — or, when GrpcTls.CertFile is empty, the same HttpTls files. */
export function loadListenerTls(c: ListenerTlsConfig): { http?: TlsMaterial; grpc?: TlsMaterial } {
  const http = loadTls('HttpTls', c.HttpTls);
  const grpc = c.GrpcTls.CertFile !== '' ? loadTls('GrpcTls', c.GrpcTls) : http;
  return { http, grpc };
}

/** How a listener is secured, for the start-up line: `off`, `tls` or `mtls`. */
export function tlsMode(t: TlsMaterial | undefined): 'off' | 'tls' | 'mtls' {
  return t === undefined ? 'off' : t.ca ? 'mtls' : 'tls';
}
