// Find and load the function's handler from _HANDLER, as AWS's Node.js runtime does.
//
// "dir/file.export.nested" names /var/task/dir/file and the property path
// export.nested of what it exports. The file is tried as: the path itself (require), .js
// (require, or import when the nearest package.json says "type": "module"), .mjs
// (import), .cjs (require); failing those, the bare name through Node's own resolution
// from /var/runtime/index.mjs, which reaches NODE_PATH (layers, /var/runtime, /var/task).
// A missing module is Runtime.ImportModuleError, a syntax error
// Runtime.UserCodeSyntaxError, a missing export Runtime.HandlerNotFound; any other
// error thrown while loading is reported as itself.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  HandlerNotFound,
  ImportModuleError,
  MalformedHandlerName,
  UserCodeSyntaxError,
} from './errors.mjs';

// AWS's runtime is one file, /var/runtime/index.mjs: errors name it in "Require stack".
const runtimeRequire = createRequire(new URL('./index.mjs', import.meta.url));

/** {moduleRoot, moduleName, handlerPath} of "dir/file.export.nested"; or throws. */
export function parseHandler(handler) {
  if (handler.includes('..')) {
    throw new MalformedHandlerName(
      `'${handler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const slash = handler.lastIndexOf('/') + 1;
  const match = /^([^.]*)\.(.*)$/.exec(handler.slice(slash));
  if (match === null) {
    throw new MalformedHandlerName('Bad handler');
  }
  return { moduleRoot: handler.slice(0, slash), moduleName: match[1], handlerPath: match[2] };
}

function nearestPackageIsModule(file) {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return JSON.parse(readFileSync(manifest, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    if (dir === dirname(dir)) {
      return false;
    }
  }
}

async function importFile(file) {
  return import(pathToFileURL(file).href);
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = resolve(appRoot, moduleRoot, moduleName);
  if (existsSync(base)) {
    return runtimeRequire(base);
  }
  if (existsSync(`${base}.js`)) {
    return nearestPackageIsModule(base) ? importFile(`${base}.js`) : runtimeRequire(`${base}.js`);
  }
  if (existsSync(`${base}.mjs`)) {
    return importFile(`${base}.mjs`);
  }
  if (existsSync(`${base}.cjs`)) {
    return runtimeRequire(`${base}.cjs`);
  }
  return runtimeRequire(moduleName);
}

/** The handler function named by `handler` under `appRoot`; throws AWS's init errors. */
export async function loadHandler(appRoot, handler) {
  const { moduleRoot, moduleName, handlerPath } = parseHandler(handler);
  let userModule;
  try {
    userModule = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new UserCodeSyntaxError(String(error));
    }
    if (error?.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(String(error));
    }
    throw error;
  }
  const found = handlerPath.split('.').reduce((value, key) => value?.[key], userModule);
  if (!found) {
    throw new HandlerNotFound(`${handler} is undefined or not exported`);
  }
  if (typeof found !== 'function') {
    throw new HandlerNotFound(`${handler} is not a function`);
  }
  return found;
}
