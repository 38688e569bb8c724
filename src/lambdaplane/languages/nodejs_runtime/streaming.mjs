// Response streaming, as AWS's Node.js runtime offers it: the global `awslambda` with
// streamifyResponse(handler) and HttpResponseStream.from(stream, metadata).
//
// A streamified handler is called as handler(event, responseStream, context). The stream
// is a Writable; its first write (or its end) opens one POST to the Runtime API's
// /response in streaming mode (Lambda-Runtime-Function-Response-Mode: streaming,
// chunked), and every write goes out as its own HTTP chunk at once. The invocation is
// over when the stream ends: by responseStream.end(), or when the handler's promise
// settles. An error before anything was written is posted to /error as usual; after,
// it travels in the trailers Lambda-Runtime-Function-Error-Type and
// Lambda-Runtime-Function-Error-Body (base64 of {errorType, errorMessage, trace}).
// HttpResponseStream.from sets the Content-Type
// application/vnd.awslambda.http-integration-response and writes the metadata's JSON,
// then 8 NUL bytes, before the first byte of the body.

import { Writable } from 'node:stream';
import { toRuntimeResponse } from './errors.mjs';

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = new Uint8Array(8);

/** True when `handler` was wrapped by awslambda.streamifyResponse. */
export function isStreaming(handler) {
  return handler?.[STREAMING] === STREAM_RESPONSE;
}

function streamifyResponse(handler, options) {
  handler[STREAMING] = STREAM_RESPONSE;
  if (options?.highWaterMark !== undefined) {
    handler[HIGH_WATER_MARK] = Number.parseInt(options.highWaterMark, 10);
  }
  return handler;
}

class HttpResponseStream {
  /** Make `stream` answer an HTTP integration (function URL): metadata first, then the body. */
  static from(stream, metadata) {
    stream.setContentType(HTTP_INTEGRATION);
    const prelude = JSON.stringify(metadata ?? {});
    stream.beforeFirstWrite = (write) => {
      write(prelude);
      write(DELIMITER);
    };
    return stream;
  }
}

export function installGlobal() {
  globalThis.awslambda = { streamifyResponse, HttpResponseStream };
}

/**
 * The response stream of one invocation. `api` is the RuntimeApi; `onDone(error)` is
 * called once the Runtime API answered the POST (or it failed).
 */
export class ResponseStream extends Writable {
  #api;
  #requestId;
  #contentType = DEFAULT_CONTENT_TYPE;
  #post = null; // {request, answered} once opened
  #onDone;
  beforeFirstWrite = null;

  constructor(api, requestId, onDone, highWaterMark) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.#api = api;
    this.#requestId = requestId;
    this.#onDone = onDone;
  }

  get opened() {
    return this.#post !== null;
  }

  setContentType(contentType) {
    if (this.#post !== null) {
      throw new Error('Cannot set content-type, too late.');
    }
    this.#contentType = contentType;
  }

  #open() {
    if (this.#post !== null) {
      return this.#post.request;
    }
    this.#post = this.#api.openResponseStream(this.#requestId, this.#contentType);
    const { request, answered } = this.#post;
    answered.then(
      () => this.#onDone(null),
      (error) => this.#onDone(error),
    );
    const first = this.beforeFirstWrite;
    this.beforeFirstWrite = null;
    if (typeof first === 'function') {
      first((data) => request.write(data));
    }
    return request;
  }

  _write(chunk, encoding, callback) {
    const request = this.#open();
    if (request.destroyed) {
      callback();
      return;
    }
    request.write(chunk, () => callback());
  }

  _final(callback) {
    const request = this.#open();
    if (!request.destroyed) {
      request.end();
    }
    callback();
  }

  /** End the response with `error` in the trailers (the stream is open). */
  fail(error) {
    const request = this.#open();
    const document = toRuntimeResponse(error);
    if (!request.destroyed && !request.writableEnded) {
      request.addTrailers({
        'Lambda-Runtime-Function-Error-Type': String(document.errorType).replace(/[^\x20-\x7e]/g, ''),
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(document)).toString('base64'),
      });
      request.end();
    }
    if (!this.destroyed) {
      this.destroy();
    }
    return this.#post.answered.then(
      () => undefined,
      () => undefined,
    );
  }
}

export function highWaterMarkOf(handler) {
  const value = handler?.[HIGH_WATER_MARK];
  return Number.isInteger(value) && value > 0 ? value : undefined;
}
