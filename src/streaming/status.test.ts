import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeStatusV1, encodeStatusV4, internalError, nonZeroExit, success } from './status';

describe('remote command status', { timeout: 10_000 }, () => {
  it('v4 writes metav1.Status as Go marshals it', () => {
    assert.equal(encodeStatusV4(success).toString(), '{"metadata":{},"status":"Success"}');
    assert.equal(
      encodeStatusV4(nonZeroExit(7, ['sh', '-c', 'exit 7'])).toString(),
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
    );
    assert.equal(
      encodeStatusV4(internalError('boom')).toString(),
      '{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500}',
    );
  });

  it('v1-v3 write nothing on success and the message on failure', () => {
    assert.equal(encodeStatusV1(success), null);
    assert.equal(encodeStatusV1(internalError('boom'))?.toString(), 'Internal error occurred: boom');
  });
});
