// The chat page in a real browser: Debian's chromium, driven by puppeteer-core (nothing downloads
// a browser), against real slm-server processes on loopback. Exits 77 (skipped) when chromium,
// puppeteer-core or a model is missing. Screenshots go to SLM_WEBUI_ARTIFACTS.
//
//   1. the page's headers: the Content-Security-Policy and the others; an unknown /webui/ path is
//      still the JSON 404;
//   2. a chat with stories260K: the reply completes, with its figures; desktop and phone
//      screenshots; Regenerate, and Edit and resend; no console error;
//   3. a reload: the conversation is still in the sidebar;
//   4. an imported conversation full of hostile markup: nothing runs, no dialog, and nothing
//      reaches a second loopback port that the markup points at; its reasoning is apart and
//      collapsed, its code block highlighted with a copy button;
//   5. with a slower model behind --api-key: the page asks for the key, shows a reply as it
//      streams, Stop ends it mid-stream, the server frees the slot (--parallel 1) and serves the next message.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { eventually, metric, startServer } from '../e2e/harness.mjs';

const SKIP = 77;
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((file) => existsSync(file));
const EXPECTED_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const TIME_LIMIT_MS = 200000;

function skip(why) {
  console.log(`skipped: ${why}`);
  process.exit(SKIP);
}

function check(condition, message) {
  if (!condition) throw new Error(`FAILED: ${message}`);
  console.log(`ok - ${message}`);
}

const binDir = process.env.SLM_BIN_DIR || '';
if (!existsSync(path.join(binDir, 'slm-server'))) skip(`slm-server is not built (SLM_BIN_DIR=${binDir})`);
if (!CHROMIUM) skip('chromium is not installed (apt-get install chromium; tools/install-deps.sh does)');
const nodeModules = process.env.SLM_WEBUI_NODE_MODULES || '';
if (!existsSync(path.join(nodeModules, 'puppeteer-core', 'package.json')))
  skip(`puppeteer-core is not installed in '${nodeModules}' ` +
       '(cp tests/server/webui/package*.json build/webui/ && npm ci --prefix build/webui)');
const sharedDir = process.env.SLM_SHARED_DIR || process.env.SLM_SHARED_DIR_DEFAULT || '';
const models = {};
for (const name of ['stories260K.gguf', 'syn-llama2-vocab-Q4_K_M.gguf']) {
  models[name] = path.join(sharedDir, 'models', name);
  if (!existsSync(models[name])) skip(`shared asset missing: ${models[name]} (set SLM_SHARED_DIR)`);
}
const puppeteer = createRequire(path.join(nodeModules, 'webui.js'))('puppeteer-core');
const artifacts = process.env.SLM_WEBUI_ARTIFACTS || path.join(os.tmpdir(), 'slm-webui-artifacts');
mkdirSync(artifacts, { recursive: true });

const watchdog = setTimeout(() => {
  console.error(`FAILED: the browser test ran over ${TIME_LIMIT_MS / 1000} s`);
  process.exit(1);
}, TIME_LIMIT_MS);

// A second loopback port that hostile markup points at: any request reaching it is a failure.
const trapHits = [];
const trap = http.createServer((request, response) => {
  trapHits.push(request.url);
  response.end('no');
});
await new Promise((resolve) => trap.listen(0, '127.0.0.1', resolve));
const trapUrl = `http://127.0.0.1:${trap.address().port}`;

// What the page does that it should not: console errors, uncaught exceptions, dialogs, and
// requests to anywhere but its own server.
function watch(page, origin) {
  const seen = { errors: [], dialogs: [], foreignRequests: [] };
  page.on('console', (message) => { if (message.type() === 'error') seen.errors.push(message.text()); });
  page.on('pageerror', (error) => seen.errors.push(`uncaught: ${error.message}`));
  page.on('dialog', async (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) seen.foreignRequests.push(url);
  });
  return seen;
}

async function openPage(browser, url) {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const seen = watch(page, url);
  const response = await page.goto(`${url}/`, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="yes"]');
  return { page, seen, response };
}

// Types a message, sends it with Enter, and waits for the newest reply to reach `state`.
async function sendMessage(page, text, state = 'done', timeout = 30000) {
  const before = await page.$$eval('.message.assistant', (replies) => replies.length);
  await page.click('#input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (count, wanted) => {
      const replies = document.querySelectorAll('.message.assistant');
      return replies.length > count && replies[replies.length - 1].dataset.state === wanted;
    }, { timeout }, before, state);
}

async function setMaxTokens(page, value) {
  if (await page.$eval('#settings', (form) => form.hidden)) await page.click('#toggle-settings');
  await page.$eval('#set-max-tokens', (input, v) => {
    input.value = String(v);
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

const hostileReply = [
  'Here is some **markdown** and hostile HTML:',
  '<script>window.__pwned = "script"; alert("script")</script>',
  `<img src="${trapUrl}/img.png" onerror="window.__pwned='onerror'; alert('onerror')">`,
  '<img src=x onerror="window.__pwned=\'img-x\'">',
  `![markdown image](${trapUrl}/markdown.png)`,
  '[a javascript: link](javascript:alert("link"))',
  '<a href="javascript:alert(\'raw link\')" id="raw-link">raw link</a>',
  `<iframe src="${trapUrl}/frame"></iframe>`,
  '<iframe srcdoc="<script>parent.__pwned=\'srcdoc\'</script>"></iframe>',
  '<svg><script>alert("svg")</script><image href="x" onerror="alert(1)"/></svg>',
  `<svg onload="alert('svg onload')"></svg>`,
  `<object data="${trapUrl}/object"></object><embed src="${trapUrl}/embed">`,
  `<link rel="stylesheet" href="${trapUrl}/style.css">`,
  `<style>@import url("${trapUrl}/import.css"); body { background: url("${trapUrl}/bg.png") }</style>`,
  `<div style="background-image: url('${trapUrl}/inline-style.png')">styled</div>`,
  `<meta http-equiv="refresh" content="0; url=${trapUrl}/refresh">`,
  `<form action="${trapUrl}/form"><button formaction="${trapUrl}/formaction">submit</button></form>`,
  `<video poster="${trapUrl}/poster.png" src="${trapUrl}/video.mp4"></video><audio src="${trapUrl}/audio.mp3" autoplay></audio>`,
  `<details open ontoggle="alert('toggle')"><summary>x</summary></details>`,
  `<p onmouseover="alert('hover')">hover me</p>`,
  `<base href="${trapUrl}/">`,
  '```html\n</code></pre><script>alert("code")</script>\n```',
].join('\n\n');

function hostileExport() {
  return JSON.stringify({
    format: 'slm-chat-conversations',
    version: 1,
    conversations: [{
      id: 'hostile',
      title: '<img src=x onerror=alert("title")> hostile',
      settings: { temperature: '<script>' },
      messages: [
        { role: 'user', content: `<script>alert("user")</script><img src="${trapUrl}/user.png">` },
        { role: 'assistant', content: hostileReply, reasoning: `<script>alert("reasoning")</script><img src="${trapUrl}/r.png">` },
      ],
    }],
  });
}

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Root in CI has no user namespaces for the sandbox; the page only ever talks to loopback.
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000,
});
const temp = mkdtempSync(path.join(os.tmpdir(), 'slm-webui-'));
const servers = [];
let failed = false;
try {
  const env = { binDir };
  const stories = await startServer(env, ['-m', models['stories260K.gguf'], '--parallel', '1', '-t', '1']);
  servers.push(stories);

  // 1. headers
  const { page, seen, response } = await openPage(browser, stories.url);
  const headers = response.headers();
  check(headers['content-security-policy'] === EXPECTED_CSP, `the page's Content-Security-Policy is ${EXPECTED_CSP}`);
  check(headers['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff');
  check(headers['referrer-policy'] === 'no-referrer', 'Referrer-Policy: no-referrer');
  check(headers['content-type'] === 'text/html; charset=utf-8', 'the page is text/html; charset=utf-8');
  const script = await fetch(`${stories.url}/webui/js/app.js`);
  check(script.status === 200 && script.headers.get('content-security-policy') === EXPECTED_CSP &&
        script.headers.get('content-type') === 'text/javascript; charset=utf-8', 'its scripts come with the same headers');
  const unknown = await fetch(`${stories.url}/webui/nothing.js`);
  check(unknown.status === 404 && typeof (await unknown.json()).error?.message === 'string',
        'an unknown /webui/ path is the JSON 404');

  // 2. a normal chat
  await page.setViewport({ width: 1280, height: 800 });
  await sendMessage(page, 'Once upon a time');
  const reply = await page.$eval('.message.assistant:last-child', (element) => ({
    text: element.querySelector('.body').textContent,
    figures: element.querySelector('.figures').textContent,
  }));
  check(reply.text.trim().length > 0, `the reply completed: "${reply.text.slice(0, 60).replace(/\n/g, ' ')}..."`);
  check(/prompt \d+ tokens \(\d+ cached\) · \d+ generated · [\d.]+ tok\/s · TTFT \d+ ms/.test(reply.figures),
        `the figures are under it: ${reply.figures}`);
  const title = await page.$eval('#conversation-list .conversation.current .title', (element) => element.textContent);
  check(title === 'Once upon a time', 'the conversation is in the sidebar, named after the first message');
  await page.screenshot({ path: path.join(artifacts, 'webui-desktop.png') });
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await page.screenshot({ path: path.join(artifacts, 'webui-phone.png') });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, 'at phone width nothing overflows sideways');
  await page.setViewport({ width: 1280, height: 800 });
  // Regenerate, then edit the message and send it again: each time one new reply, completed.
  await page.$eval('.message.assistant', (element) => { element.dataset.old = 'yes'; });
  await page.click('.message.assistant .regenerate');
  await page.waitForFunction(() => {
    const replies = document.querySelectorAll('.message.assistant');
    return replies.length === 1 && !replies[0].dataset.old && replies[0].dataset.state === 'done';
  });
  check(true, 'Regenerate replaces the reply with a new one');
  await page.click('.message.user .edit');
  await page.$eval('.message.user .edit-box', (box) => { box.value = 'Once upon a time there was a cat'; });
  await page.click('.message.user .save-edit');
  await page.waitForFunction(() => {
    const replies = document.querySelectorAll('.message.assistant');
    return replies.length === 1 && replies[0].dataset.state === 'done' &&
      document.querySelector('.message.user .body').textContent === 'Once upon a time there was a cat';
  });
  check(true, 'an edited message is sent again and answered');
  const lastReply = await page.$eval('.message.assistant .body', (element) => element.textContent);
  check(seen.errors.length === 0, `no console error on a normal chat ${JSON.stringify(seen.errors)}`);

  // 3. reload
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="yes"]');
  const titles = await page.$$eval('#conversation-list .title', (elements) => elements.map((e) => e.textContent));
  check(titles.includes('Once upon a time'), 'after a reload the conversation is still in the sidebar');
  const kept = await page.$eval('.message.assistant:last-child .body', (element) => element.textContent);
  check(kept === lastReply, 'and its last reply is the same');

  // 4. hostile markup, imported
  const file = path.join(temp, 'hostile.json');
  writeFileSync(file, hostileExport());
  const input = await page.$('#import-file');
  await input.uploadFile(file);
  await page.waitForFunction(() => /Imported 1 conversation/.test(document.getElementById('status').textContent));
  await page.waitForSelector('.message.assistant[data-state="done"] .markdown strong');
  await page.hover('.message.assistant .markdown');
  await page.$$eval('.markdown a', (links) => links.forEach((link) => link.click()));  // javascript: links lose their href
  await page.$$eval('.markdown p', (paragraphs) => paragraphs.forEach((p) => p.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }))));
  await new Promise((resolve) => setTimeout(resolve, 1500));  // time for anything that would load or run
  const dom = await page.evaluate(() => ({
    pwned: window.__pwned,
    dangerous: [...document.querySelectorAll('#messages script, #messages iframe, #messages object, #messages embed, ' +
      '#messages svg, #messages style, #messages link, #messages meta, #messages form, #messages base, ' +
      '#messages video, #messages audio, #messages [style]')].map((element) => element.outerHTML.slice(0, 100)),
    handlers: [...document.querySelectorAll('#messages *')].filter((element) =>
      [...element.attributes].some((attribute) => attribute.name.startsWith('on'))).length,
    javascriptLinks: [...document.querySelectorAll('#messages a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') || '')).length,
    remoteImages: [...document.querySelectorAll('#messages img')].filter((img) => !(img.getAttribute('src') || '').startsWith('data:')).length,
    shownAsText: document.querySelector('.message.user .body').textContent.includes('<script>') &&
      document.querySelector('.message.assistant .markdown').textContent.includes('<script>window.__pwned'),
    location: window.location.href,
  }));
  check(dom.pwned === undefined, 'no injected script ran');
  check(dom.dangerous.length === 0, `no script, iframe, object, embed, svg, style, link, meta, form, base, media or style attribute is left in the page ${JSON.stringify(dom.dangerous)}`);
  check(dom.handlers === 0, 'no event handler attribute is left');
  check(dom.javascriptLinks === 0, 'no javascript: link is left');
  check(dom.remoteImages === 0, 'no image other than a data: URL is left');
  check(dom.shownAsText, 'markup in a user message and in a reply is shown as text');
  check(dom.location === `${stories.url}/`, 'the page did not navigate away');
  const rendered = await page.evaluate(() => ({
    reasoningClosed: document.querySelector('.message.assistant details.reasoning:not([hidden])')?.open === false,
    reasoningText: document.querySelector('.message.assistant .reasoning-text')?.textContent || '',
    highlighted: document.querySelectorAll('.markdown pre code.hljs').length,
    copyButtons: document.querySelectorAll('.markdown pre .copy-code').length,
  }));
  check(rendered.reasoningClosed && rendered.reasoningText.startsWith('<script>'),
        'the reasoning is shown apart, collapsed, as text');
  check(rendered.highlighted === 1 && rendered.copyButtons === 1, 'the code block is highlighted and has a copy button');
  check(seen.dialogs.length === 0, `no dialog opened ${JSON.stringify(seen.dialogs)}`);
  check(trapHits.length === 0, `no request reached the second loopback port ${JSON.stringify(trapHits)}`);
  check(seen.foreignRequests.length === 0, `the browser asked nothing of any other origin ${JSON.stringify(seen.foreignRequests)}`);
  check(seen.errors.length === 0, `no console error after the import ${JSON.stringify(seen.errors)}`);
  await page.close();

  // 5. an API key, Stop, and the slot freed: a model slow enough to stop (a 32000-token vocabulary, one thread)
  const key = 'webui-test-key';
  const slow = await startServer(env, ['-m', models['syn-llama2-vocab-Q4_K_M.gguf'], '--parallel', '1', '--queue', '0',
                                       '-t', '1', '--api-key', key]);
  servers.push(slow);
  const keyed = await browser.newPage();
  keyed.setDefaultTimeout(30000);
  const keyedSeen = watch(keyed, slow.url);
  await keyed.goto(`${slow.url}/`, { waitUntil: 'load' });
  await keyed.waitForSelector('#key-dialog[open]');
  check(true, 'the page asks for the API key when the server answers 401');
  await keyed.type('#key-input', key);
  await keyed.keyboard.press('Enter');
  await keyed.waitForFunction(() => document.getElementById('model-name').textContent !== '');
  check(await keyed.evaluate(() => sessionStorage.getItem('slm.apiKey')) === 'webui-test-key',
        'the key is kept in the session storage');
  check(await keyed.evaluate(() => Object.keys(localStorage).every((k) => !localStorage.getItem(k).includes('webui-test-key'))),
        'and not in the local storage');
  await setMaxTokens(keyed, 3000);
  await keyed.click('#input');
  await keyed.keyboard.type('Tell me a long story');
  await keyed.keyboard.press('Enter');
  await keyed.waitForFunction(() => {
    const body = document.querySelector('.message.assistant[data-state="streaming"] .body');
    return body && body.textContent.length > 20;
  });
  check(true, 'the reply is shown while it streams');  // stories260K is too fast to see that
  check(await metric(slow, key, 'slm_requests_running') === 1, 'the reply is generating on the server');
  await keyed.click('#stop');
  await keyed.waitForSelector('.message.assistant[data-state="stopped"]');
  check(true, 'Stop ends the reply mid-stream');
  check(await eventually(async () => await metric(slow, key, 'slm_requests_running') === 0, 5000),
        'the server freed the slot');
  await setMaxTokens(keyed, 8);
  await sendMessage(keyed, 'And another one', 'done', 30000);
  check(true, 'the next message is served (--parallel 1 --queue 0: it would be refused if the slot were held)');
  check(keyedSeen.dialogs.length === 0 && keyedSeen.foreignRequests.length === 0, 'no dialog, nothing foreign');
  await keyed.close();
} catch (error) {
  failed = true;
  console.error(error.stack || String(error));
  for (const server of servers) console.error(`--- slm-server ${server.url} stderr:\n${server.stderr()}`);
} finally {
  await browser.close();
  for (const server of servers) await server.stop();
  trap.close();
  rmSync(temp, { recursive: true, force: true });
  clearTimeout(watchdog);
}
console.log(failed ? 'webui browser test: FAILED' : `webui browser test: passed (screenshots in ${artifacts})`);
process.exit(failed ? 1 : 0);
