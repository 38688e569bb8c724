// A client of the Runtime API 2018-06-01 at AWS_LAMBDA_RUNTIME_API, over one keep-alive
// connection (an idle kept-alive socket is unref'd, so it never holds the event loop open:
// callbackWaitsForEmptyEventLoop depends on that).

import http from 'node:http';

const PREFIX = '/2018-06-01/runtime';

// Node refuses header values outside Latin-1 or with control characters.
function headerValue(value) {
  return String(value).replace(/[^\x20-\x7e]/g, '');
}

export class RuntimeApi {
  #host;
  #port;
  #agent = new http.Agent({ keepAlive: true });

  /** `address` is "host:port". */
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.#host = address.slice(0, colon);
    this.#port = Number(address.slice(colon + 1));
  }

  /** The next event: {headers, body} (body still JSON text); waits as long as it takes. */
  async next() {
    const answer = await this.#send('GET', `${PREFIX}/invocation/next`);
    if (answer.status !== 200) {
      throw new Error(`Runtime API /next answered ${answer.status}: ${answer.body}`);
    }
    return answer;
  }

  /** Post an invocation's result, already JSON text. */
  postResponse(requestId, json) {
    return this.#send('POST', `${PREFIX}/invocation/${requestId}/response`, json);
  }

  /**
   * Open the POST of a streamed response: {request, answered}. Write the body to
   * `request` (each write is one HTTP chunk, sent at once), end it (trailers first, if
   * any); `answered` settles when the Runtime API has answered. Its own connection,
   * closed afterwards, as AWS asks of streaming runtimes.
   */
  openResponseStream(requestId, contentType) {
    const request = http.request({
      host: this.#host,
      port: this.#port,
      method: 'POST',
      path: `${PREFIX}/invocation/${requestId}/response`,
      agent: false,
      headers: {
        'Content-Type': headerValue(contentType),
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
        Connection: 'close',
      },
    });
    request.on('socket', (socket) => socket.setNoDelay(true));
    const answered = new Promise((resolve, reject) => {
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
    request.flushHeaders();
    return { request, answered };
  }

  /** Post an invocation's error document ({errorType, errorMessage, trace}). */
  postError(requestId, document) {
    return this.#sendError(`${PREFIX}/invocation/${requestId}/error`, document);
  }

  /** Post the error that ended the init phase. */
  postInitError(document) {
    return this.#sendError(`${PREFIX}/init/error`, document);
  }

  #sendError(path, document) {
    const headers = { 'Lambda-Runtime-Function-Error-Type': headerValue(document.errorType) };
    return this.#send('POST', path, JSON.stringify(document), headers);
  }

  #send(method, path, body, headers = {}) {
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const options = { host: this.#host, port: this.#port, method, path, headers, agent: this.#agent };
    return new Promise((resolve, reject) => {
      const request = http.request(options, (response) => {
        response.setEncoding('utf8');
        let text = '';
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode, headers: response.headers, body: text }),
        );
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  }
}
