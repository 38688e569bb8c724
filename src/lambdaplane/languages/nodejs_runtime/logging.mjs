// console.* as AWS's Node.js runtime patches it: one line on stdout per call.
//
// Text (the default): "<ISO time>\t<request id>\t<LEVEL>\t<util.format(...)>", with every
// "\n" turned into "\r" so that a multi-line message stays one log event. JSON
// (AWS_LAMBDA_LOG_FORMAT=JSON): {"timestamp","level","requestId","message"}, where a lone
// argument is kept as a value (errors become {errorType, errorMessage, stackTrace}).
// AWS_LAMBDA_LOG_LEVEL drops the levels below it; with JSON it defaults to INFO, as the
// ApplicationLogLevel AWS then sets does. During init the request id is `undefined`.

import { format } from 'node:util';
import { toFormatted, toRuntimeResponse } from './errors.mjs';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

let requestId;

/** The request id stamped on every line from now on. */
export function setRequestId(id) {
  requestId = id;
}

function textLine(level, args) {
  const line = `${new Date().toISOString()}\t${requestId}\t${level}\t${format(...args)}`;
  return `${line.replaceAll('\n', '\r')}\n`;
}

function errorFields(_key, value) {
  if (!(value instanceof Error)) {
    return value;
  }
  return {
    errorType: value.constructor?.name ?? 'UnknownError',
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    ...value,
  };
}

function jsonLine(level, args) {
  const record = { timestamp: new Date().toISOString(), level, requestId };
  if (args.length === 1) {
    record.message = args[0];
    try {
      return `${JSON.stringify(record, errorFields)}\n`;
    } catch {
      // Circular structures, BigInts: fall back to the text rendering of the value.
    }
  }
  record.message = format(...args);
  return `${JSON.stringify(record)}\n`;
}

function threshold(env, json) {
  const wanted = LEVELS.indexOf(String(env.AWS_LAMBDA_LOG_LEVEL ?? '').toUpperCase());
  if (wanted >= 0) {
    return wanted;
  }
  return json ? LEVELS.indexOf('INFO') : 0;
}

/**
 * Patch the global console for `env`'s format and level; returns `error(message, err)`,
 * which logs one of the runtime's own errors ("Invoke Error", "Uncaught Exception"...).
 */
export function installConsole(env, write = (text) => process.stdout.write(text)) {
  const json = env.AWS_LAMBDA_LOG_FORMAT === 'JSON';
  const lowest = threshold(env, json);
  const render = json ? jsonLine : textLine;
  const enabled = (level) => LEVELS.indexOf(level) >= lowest;
  const method = (level) =>
    enabled(level) ? (...args) => write(render(level, args)) : () => {};

  console.trace = method('TRACE');
  console.debug = method('DEBUG');
  console.info = method('INFO');
  console.log = method('INFO');
  console.warn = method('WARN');
  console.error = method('ERROR');
  console.fatal = method('FATAL');

  const error = (message, err) => {
    if (!enabled('ERROR')) {
      return;
    }
    if (!json) {
      write(textLine('ERROR', [message, toFormatted(err)]));
      return;
    }
    const { errorType, errorMessage, trace } = toRuntimeResponse(err);
    const record = {
      timestamp: new Date().toISOString(),
      level: 'ERROR',
      requestId,
      message,
      errorType,
      errorMessage,
      stackTrace: trace,
    };
    write(`${JSON.stringify(record)}\n`);
  };
  return { error };
}
