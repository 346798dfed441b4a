// What every end-to-end test file shares: where the built tools, the shared models and the
// installed `openai` package are; a real slm-server process on a free loopback port; slm-chat
// runs; and small HTTP helpers. A file whose assets are missing exits 77, which CTest reports
// as skipped.
//
// Environment (set by CTest, see CMakeLists.txt "End-to-end tests"):
//   SLM_BIN_DIR              the built slm-* tools
//   SLM_SHARED_DIR           the shared assets; else SLM_SHARED_DIR_DEFAULT (CMake's -DSLM_SHARED_DIR)
//   SLM_E2E_NODE_MODULES     node_modules holding `openai` (npm ci --prefix build/e2e)
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const SKIP_EXIT_CODE = 77;

function skip(why) {
  console.log(`skipped: ${why}`);
  process.exit(SKIP_EXIT_CODE);
}

// The tools, the models by file name (e.g. 'stories260K.gguf') and the openai package; exits 77
// with a message when one is missing.
export function requireEnvironment(modelNames) {
  const binDir = process.env.SLM_BIN_DIR;
  if (!binDir || !existsSync(path.join(binDir, 'slm-server'))) skip(`slm-server is not built (SLM_BIN_DIR=${binDir})`);
  const sharedDir = process.env.SLM_SHARED_DIR || process.env.SLM_SHARED_DIR_DEFAULT || '';
  const models = {};
  for (const name of modelNames) {
    models[name] = path.join(sharedDir, 'models', name);
    if (!existsSync(models[name]))
      skip(`shared asset missing: ${models[name]} (set SLM_SHARED_DIR to the shared folder)`);
  }
  const nodeModules = process.env.SLM_E2E_NODE_MODULES || '';
  if (!existsSync(path.join(nodeModules, 'openai', 'package.json')))
    skip(`the openai package is not installed in '${nodeModules}' ` +
         '(cp tests/server/e2e/package*.json build/e2e/ && npm ci --prefix build/e2e)');
  const requireFromModules = createRequire(path.join(nodeModules, 'e2e.js'));
  const OpenAI = requireFromModules('openai').OpenAI;
  return { binDir, models, OpenAI };
}

const running = new Set();
process.on('exit', () => { for (const child of running) child.kill('SIGKILL'); });

// slm-server with `args` on 127.0.0.1 and a port the kernel picks (--port 0); resolves once the
// server prints "listening on http://127.0.0.1:PORT", rejects with its output when it exits first.
export function startServer(env, args, { readyTimeoutMs = 60000 } = {}) {
  const child = spawn(path.join(env.binDir, 'slm-server'), ['--host', '127.0.0.1', '--port', '0', ...args],
                      { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));
  let settled = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`slm-server did not get ready within ${readyTimeoutMs} ms:\n${stderr}`));
    }, readyTimeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => {
      stderr += text;  // read on to the end, so that the server's logging never blocks it
      const ready = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (!ready || settled) return;
      settled = true;
      clearTimeout(timer);
      const url = ready[1];
      resolve({
        url,
        baseURL: `${url}/v1`,
        pid: child.pid,
        stderr: () => stderr,
        exited,
        // Sends `signal` and resolves with the exit, killing the server if it outlives the timeout.
        async stop(signal = 'SIGTERM', timeoutMs = 30000) {
          child.kill(signal);
          const deadline = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          const exit = await exited;
          clearTimeout(deadline);
          return exit;
        },
      });
    });
    exited.then((exit) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`slm-server exited (${JSON.stringify(exit)}) before it was ready:\n${stderr}`));
    });
  });
}

// Runs body(server) against a new slm-server (startServer's arguments) and stops the server
// however body ends: after a failed assertion a running server would keep node, and the test,
// alive until CTest's timeout. A server body already stopped is left as it is.
export async function withServer(env, args, body, options) {
  const server = await startServer(env, args, options);
  try {
    return await body(server);
  } finally {
    await server.stop('SIGKILL');
  }
}

// slm-chat's reply to `args` (one-shot -p), decoded as the server decodes text: UTF-8 with
// U+FFFD for bytes that are not.
export function slmChatReply(env, args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(env.binDir, 'slm-chat'), args, { encoding: 'buffer', timeout: 120000 },
             (error, stdout, stderr) => {
               if (error) reject(new Error(`slm-chat ${args.join(' ')} failed: ${error.message}\n${stderr}`));
               else resolve(new TextDecoder('utf-8').decode(stdout).replace(/\n$/, ''));
             });
  });
}

// A client that never retries: a test must see every refusal, and count every request once.
export function client(env, server, apiKey, options = {}) {
  return new env.OpenAI({ baseURL: server.baseURL, apiKey, maxRetries: 0, timeout: 120000, ...options });
}

// GET /health's status.
export async function healthStatus(server) {
  return (await fetch(`${server.url}/health`)).status;
}

// The value of a Prometheus metric without labels from GET /metrics.
export async function metric(server, apiKey, name) {
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  const text = await (await fetch(`${server.url}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`/metrics has no ${name}:\n${text}`);
  return Number(line.split(' ')[1]);
}

// Polls `condition` every 20 ms until it holds; false after `timeoutMs`.
export async function eventually(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}
