import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrpcStatus, JsonRpcCode } from '@dtx/protocol';
import { grpcStatusOf } from '../src/api/grpc/status.js';
import { httpErrorReply } from '../src/api/http/app.js';
import { JsonRpcError, jsonRpcErrorOf } from '../src/api/json-rpc/json-rpc.js';
import {
  DtxServerError,
  FailureError,
  InputError,
  LimitError,
  NotFoundError,
  OngoingError,
  RefusedError,
  StoreUnavailableError,
  UniqueConflictError,
} from '../src/core/errors.js';

// One error hierarchy, mapped to a status once per transport: each row is an error, its code and retryable flag,
// and what HTTP, gRPC and JSON-RPC answer for it.
describe('errors: one hierarchy, one mapping per transport', () => {
  const rows: [Error, string, boolean, number, Record<string, string>, number, number][] = [
    [
      new FailureError('no'),
      'FAILURE',
      false,
      409,
      { dtm_result: 'FAILURE', message: 'no FAILURE' },
      GrpcStatus.ABORTED,
      JsonRpcCode.Failure,
    ],
    [
      new OngoingError(),
      'ONGOING',
      true,
      425,
      { dtm_result: 'ONGOING', message: 'ONGOING' },
      GrpcStatus.FAILED_PRECONDITION,
      JsonRpcCode.Ongoing,
    ],
    [
      new InputError('gid', 'required'),
      'INVALID_INPUT',
      false,
      400,
      { message: 'gid: required' },
      GrpcStatus.INVALID_ARGUMENT,
      JsonRpcError.Internal,
    ],
    [
      new LimitError('steps', 'too many'),
      'TOO_LARGE',
      false,
      413,
      { message: 'steps: too many' },
      GrpcStatus.INVALID_ARGUMENT,
      JsonRpcError.Internal,
    ],
    [
      new RefusedError('step 01 is recorded already'),
      'REFUSED',
      false,
      422,
      { message: 'step 01 is recorded already' },
      GrpcStatus.ALREADY_EXISTS,
      JsonRpcError.Refused,
    ],
    [
      new NotFoundError('no such a topic'),
      'NOT_FOUND',
      false,
      404,
      { message: 'no such a topic' },
      GrpcStatus.NOT_FOUND,
      JsonRpcError.Internal,
    ],
    [
      new UniqueConflictError('this url exists'),
      'CONFLICT',
      false,
      400,
      { message: 'this url exists' },
      GrpcStatus.ALREADY_EXISTS,
      JsonRpcError.Internal,
    ],
    [
      new StoreUnavailableError('store unavailable (postgres): connect ECONNREFUSED'),
      'UNAVAILABLE',
      true,
      503,
      { message: 'store unavailable (postgres): connect ECONNREFUSED' },
      GrpcStatus.UNAVAILABLE,
      JsonRpcError.Unavailable,
    ],
    [
      new DtxServerError('INTERNAL', 'bug'),
      'INTERNAL',
      true,
      500,
      { message: 'bug' },
      GrpcStatus.INTERNAL,
      JsonRpcError.Internal,
    ],
  ];

  for (const [err, code, retryable, status, body, grpc, rpc] of rows) {
    it(`${err.name} (${code}): HTTP ${status}, gRPC ${grpc}, JSON-RPC ${rpc}`, () => {
      assert.ok(err instanceof DtxServerError);
      assert.equal(err.code, code);
      assert.equal(err.retryable, retryable);
      assert.deepEqual(httpErrorReply(err), { status, body });
      assert.equal(grpcStatusOf(err).code, grpc);
      assert.equal(jsonRpcErrorOf(err), rpc);
    });
  }

  it('anything else is a 500 / INTERNAL or UNKNOWN / -32603', () => {
    assert.deepEqual(httpErrorReply(new Error('x')), { status: 500, body: { message: 'x' } });
    assert.equal(grpcStatusOf(new TypeError('x')).code, GrpcStatus.INTERNAL);
    assert.equal(grpcStatusOf(new Error('x')).code, GrpcStatus.UNKNOWN);
    assert.equal(jsonRpcErrorOf(new Error('x')), JsonRpcError.Internal);
  });
});
