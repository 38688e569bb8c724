// lambdaplane's Node.js runtime, started by /var/runtime/bootstrap as AWS starts its own.
//
// Init: patch console, load the handler named by _HANDLER from LAMBDA_TASK_ROOT; a
// failure is logged as "Uncaught Exception", posted to /init/error and ends the process.
// Then one invocation at a time through the Runtime API (invoke.mjs). An uncaught
// exception or unhandled rejection at any time is logged, posted (for init, or for the
// invocation in flight) and ends the process with 129 or 128, as AWS's runtime does.
// Node 18+ built-ins only; nothing here is fetched at run time.

import { UnhandledPromiseRejection } from './errors.mjs';
import { Runtime } from './invoke.mjs';
import { installConsole } from './logging.mjs';
import { RuntimeApi } from './runtime_api.mjs';
import { installGlobal } from './streaming.mjs';
import { loadHandler } from './user_function.mjs';

const UNCAUGHT_EXCEPTION_EXIT = 129;
const UNHANDLED_REJECTION_EXIT = 128;

const env = process.env;
installGlobal(); // awslambda.streamifyResponse and HttpResponseStream, before the handler loads
const log = installConsole(env);
const runtime = new Runtime(new RuntimeApi(env.AWS_LAMBDA_RUNTIME_API), log, env);

function describe(reason) {
  try {
    return reason?.toString();
  } catch {
    return Object.prototype.toString.call(reason);
  }
}

process.on('uncaughtException', (error) => {
  log.error('Uncaught Exception', error);
  runtime.crash(error, UNCAUGHT_EXCEPTION_EXIT);
});
process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(describe(reason), promise);
  log.error('Unhandled Promise Rejection', error);
  runtime.crash(error, UNHANDLED_REJECTION_EXIT);
});

let handler;
try {
  handler = await loadHandler(env.LAMBDA_TASK_ROOT ?? '/var/task', env._HANDLER ?? '');
} catch (error) {
  log.error('Uncaught Exception', error);
  runtime.crash(error, UNCAUGHT_EXCEPTION_EXIT);
}
if (handler !== undefined) {
  runtime.start(handler);
}
