// The runtime's own error types, and the two shapes AWS's Node.js runtime gives errors:
// the document posted to the Runtime API ({errorType, errorMessage, trace}) and the
// tab-led JSON written after "Invoke Error" and the like in the function's log.

import { types } from 'node:util';

function runtimeError(name) {
  const type = class extends Error {};
  Object.defineProperty(type, 'name', { value: name });
  // On the prototype, as AWS does: the stack reads "Runtime.X: message".
  type.prototype.name = `Runtime.${name}`;
  return type;
}

export const ImportModuleError = runtimeError('ImportModuleError');
export const HandlerNotFound = runtimeError('HandlerNotFound');
export const MalformedHandlerName = runtimeError('MalformedHandlerName');
export const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');

export class UnhandledPromiseRejection extends Error {
  /** `reason` is the rejection's reason as a string, as AWS reports it. */
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

function looksLikeError(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string'
  );
}

/** The error document for /invocation/{id}/error and /init/error. */
export function toRuntimeResponse(error) {
  try {
    if (types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(_key, value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const shaped = { errorType: value.name, errorMessage: value.message, code: value.code, ...value };
  if (typeof value.stack === 'string') {
    shaped.stack = value.stack.split('\n');
  }
  return shaped;
}

/** "\t{...}": how the Text log shows an error after "Invoke Error", "Uncaught Exception"... */
export function toFormatted(error) {
  try {
    return `\t${JSON.stringify(error, withEnumerableProperties)}`;
  } catch {
    return `\t${JSON.stringify(toRuntimeResponse(error))}`;
  }
}
