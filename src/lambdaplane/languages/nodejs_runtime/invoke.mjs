// The invocation loop: /next, call the handler, report its one outcome, and again.
//
// How a handler's outcome is reported follows AWS's Node.js runtime:
// - A returned promise (any thenable) reports when it settles, at once.
// - callback(error) and context.done/succeed/fail report at once.
// - callback(null, result) reports when the event loop is next empty ("beforeExit"),
//   or at once when context.callbackWaitsForEmptyEventLoop is false.
// - Otherwise (a sync handler, whatever it returns) `null` is reported once the event
//   loop is empty.
// Only the first report of an invocation counts. The result goes out as JSON.stringify
// (undefined as null); an error as {errorType, errorMessage, trace}, logged as
// "Invoke Error".

import { toRuntimeResponse } from './errors.mjs';
import { setRequestId } from './logging.mjs';
import { highWaterMarkOf, isStreaming, ResponseStream } from './streaming.mjs';

const noop = () => {};

// What to do when the event loop runs dry: "beforeExit" is the only signal Node gives.
let onEmptyLoop = noop;
process.on('beforeExit', () => onEmptyLoop());

function parseJson(text, name) {
  if (text === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`Cannot parse ${name} as json: ${error}`);
  }
}

function isThenable(value) {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof value.then === 'function'
  );
}

class Invocation {
  reported = false;
  waitForEmptyEventLoop = true;

  constructor(headers, runtime) {
    this.headers = headers;
    this.id = headers['lambda-runtime-aws-request-id'];
    this.deadline = Number(headers['lambda-runtime-deadline-ms']);
    this.runtime = runtime;
    this.done = (error, result) => {
      if (this.reported) {
        return;
      }
      onEmptyLoop = noop;
      if (error !== undefined && error !== null) {
        this.postError(error);
      } else {
        this.postResult(result);
      }
    };
    this.succeed = (result) => this.done(null, result);
    this.fail = (error) => this.done(error ?? 'handled');
    this.callback = (error, result) => {
      if (this.reported) {
        return;
      }
      onEmptyLoop = noop;
      if (error !== undefined && error !== null) {
        this.postError(error);
      } else if (!this.waitForEmptyEventLoop) {
        this.postResult(result);
      } else {
        onEmptyLoop = () => setImmediate(() => this.postResult(result));
      }
    };
  }

  /** The handler's context, keys in the order AWS's runtime gives them. */
  context(shared) {
    const invocation = this;
    const { headers } = this;
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return invocation.waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        invocation.waitForEmptyEventLoop = value;
      },
      succeed: this.succeed,
      fail: this.fail,
      done: this.done,
      ...shared,
      clientContext: parseJson(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: this.id,
      getRemainingTimeInMillis: () => this.deadline - Date.now(),
    };
    const tenantId = headers['lambda-runtime-aws-tenant-id'];
    if (tenantId !== undefined) {
      context.tenantId = tenantId; // tenant isolation mode only
    }
    return context;
  }

  postResult(result) {
    if (this.reported) {
      return;
    }
    let json;
    try {
      json = JSON.stringify(result === undefined ? null : result) ?? 'null';
    } catch {
      this.postError(new Error('Unable to stringify response body'));
      return;
    }
    this.reported = true;
    this.runtime.settle(this.runtime.api.postResponse(this.id, json));
  }

  postError(error) {
    if (this.reported) {
      return;
    }
    this.reported = true;
    this.runtime.log.error('Invoke Error', error);
    this.runtime.settle(this.runtime.api.postError(this.id, toRuntimeResponse(error)));
  }
}

// Named as AWS's is: a handler's stack shows "at Runtime.handler" and "Runtime.handleOnce".
export class Runtime {
  handler = null;
  #current = null;
  #crashing = false;
  #shared;

  /** `api` is a RuntimeApi; `log` what installConsole returned; `env` process.env. */
  constructor(api, log, env) {
    this.api = api;
    this.log = log;
    // The same for every invocation of this environment.
    this.#shared = {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    };
  }

  /** Init is over: ask for the first event. */
  start(handler) {
    this.handler = handler;
    this.#scheduleNext();
  }

  /** An invocation's report is on its way: once it is accepted, ask for the next event. */
  settle(posted) {
    posted.then(
      () => this.#scheduleNext(),
      (error) => this.#unexpected(error),
    );
  }

  /**
   * An uncaught exception or unhandled rejection: report `error` for the init phase or
   * the invocation in flight (if it is not reported yet), then exit with `code`.
   */
  crash(error, code) {
    if (this.#crashing) {
      return;
    }
    this.#crashing = true;
    const exit = () => process.exit(code);
    const current = this.#current;
    let posted = Promise.resolve();
    if (this.handler === null) {
      posted = this.api.postInitError(toRuntimeResponse(error));
    } else if (current !== null && !current.reported) {
      current.reported = true;
      posted = current.stream?.opened
        ? current.stream.fail(error)
        : this.api.postError(current.id, toRuntimeResponse(error));
    }
    posted.then(exit, exit);
  }

  #scheduleNext() {
    setImmediate(() => this.handleOnce().catch((error) => this.#unexpected(error)));
  }

  #unexpected(error) {
    console.log(`Unexpected Top Level Error: ${error}`);
    this.crash(error, 129);
  }

  async handleOnce() {
    const { headers, body } = await this.api.next();
    const invocation = new Invocation(headers, this);
    this.#current = invocation;
    setRequestId(invocation.id);
    const traceId = headers['lambda-runtime-trace-id'];
    if (traceId) {
      process.env._X_AMZN_TRACE_ID = traceId;
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    if (isStreaming(this.handler)) {
      this.#handleStreaming(invocation, body);
      return;
    }
    onEmptyLoop = () => invocation.postResult(null);
    let result;
    try {
      result = this.handler(JSON.parse(body), invocation.context(this.#shared), invocation.callback);
    } catch (error) {
      invocation.callback(error);
      return;
    }
    if (isThenable(result)) {
      result.then(invocation.succeed, invocation.fail);
    }
  }

  /**
   * A streamifyResponse handler: handler(event, responseStream, context). The invocation
   * is over once the stream's POST is answered; the handler's promise settling ends the
   * stream (or reports its error), as does an empty event loop.
   */
  #handleStreaming(invocation, body) {
    let finished = false;
    const stream = new ResponseStream(
      this.api,
      invocation.id,
      () => {
        if (finished) {
          return;
        }
        finished = true;
        invocation.reported = true;
        onEmptyLoop = noop;
        this.#scheduleNext();
      },
      highWaterMarkOf(this.handler),
    );
    invocation.stream = stream;
    const end = () => {
      if (!stream.writableEnded && !stream.destroyed) {
        stream.end();
      }
    };
    const fail = (error) => {
      if (invocation.reported || finished) {
        return;
      }
      if (!stream.opened) {
        onEmptyLoop = noop;
        invocation.postError(error);
        return;
      }
      invocation.reported = true;
      this.log.error('Invoke Error', error);
      stream.fail(error);
    };
    onEmptyLoop = end;
    let result;
    try {
      result = this.handler(JSON.parse(body), stream, invocation.context(this.#shared));
    } catch (error) {
      fail(error);
      return;
    }
    if (isThenable(result)) {
      result.then(end, fail);
    }
  }
}
