// The demo page in a real browser: Debian's headless Chromium (/usr/bin/chromium, never a
// downloaded one), driven by playwright-core, against `clipxai serve` on the bundled model.
//   node tests/browser/demo.test.js CLIPXAI_BINARY SOURCE_DIR WORK_DIR [SCREENSHOT_DIR]
// Explain tab: upload examples/girl_boy_desktop.png, type "girl", Explain: the overlay and the
// shaded tokens appear, with the probability and logit `clipxai explain` gives; three prompts
// likewise; a prompt that is markup stays text. Entities tab: the sentence's map and one per
// phrase ("a girl", "a boy", "a desktop computer"), the phrases marked in the sentence. Then
// SIGTERM: the server exits 0. Exits 77 (CTest's skip) when playwright-core or Chromium is
// missing; scripts/test.sh installs both.
'use strict';

const { chromiumOrSkip } = require('./browser');
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const [binary, source, work, screenshots] = process.argv.slice(2);
const IMAGE = path.join(source, 'examples', 'girl_boy_desktop.png');
const SENTENCE = 'a girl and a boy at a desktop computer';

const chromium = chromiumOrSkip();

// `clipxai explain --json -`'s result for the image.
function cliResult(prompts) {
  const document = JSON.parse(execFileSync(binary, [
    'explain', '--out', path.join(work, 'cli'), '--json', '-', IMAGE, ...prompts,
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  return document.results[0];
}
const cliScores = (prompts) => cliResult(prompts).prompts;

function startServer() {
  const server = spawn(binary, ['serve', '--port', '0', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const address = new Promise((resolve, reject) => {
    server.stderr.on('data', (chunk) => {
      log += chunk;
      const found = log.match(/on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (found) resolve(found[1]);
    });
    server.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${log}`)));
  });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  return { server, address, exited, log: () => log };
}

async function cards(page, selector, count) {
  await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length === n &&
      [...document.querySelectorAll(`${s} img`)].every((img) => img.complete && img.naturalWidth > 0),
    [selector, count], { timeout: 60000 });
  return page.$$eval(selector, (nodes) => nodes.map((card) => ({
    label: card.querySelector('.label').textContent,
    probability: Number(card.dataset.probability),
    logit: Number(card.dataset.logit),
    tokens: [...card.querySelectorAll('.token')].map((t) => ({ text: t.textContent, shade: t.style.background })),
    width: card.querySelector('img.backdrop').naturalWidth,
    heatWidth: card.querySelector('img.heat').naturalWidth,
  })));
}

function sameScores(shown, expected, what) {
  assert.strictEqual(shown.length, expected.length, `${what}: ${shown.length} cards`);
  shown.forEach((card, i) => {
    assert.ok(Math.abs(card.probability - expected[i].probability) < 1e-9,
      `${what}: probability ${card.probability} vs the CLI's ${expected[i].probability}`);
    assert.ok(Math.abs(card.logit - expected[i].logit) < 1e-9,
      `${what}: logit ${card.logit} vs the CLI's ${expected[i].logit}`);
  });
}

async function main() {
  fs.mkdirSync(work, { recursive: true });
  const { server, address, exited, log } = startServer();
  const url = await address;
  const browser = await chromium.launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
    page.on('requestfailed', (request) => problems.push(`failed: ${request.url()}`));
    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll('#method option').length > 0);

    // Explain tab, one prompt.
    await page.setInputFiles('#explain-form [data-file]', IMAGE);
    await page.fill('#prompts', 'girl');
    await page.click('#explain-button');
    let shown = await cards(page, '#explain-results .card', 1);
    sameScores(shown, cliScores(['girl']), '"girl"');
    const width = cliResult(['girl']).width;
    assert.strictEqual(shown[0].width, width, 'the overlay is the image\'s size');
    assert.strictEqual(shown[0].heatWidth, width);
    assert.deepStrictEqual(shown[0].tokens.map((t) => t.text), ['girl']);
    assert.match(shown[0].tokens[0].shade, /rgba\(217, 72, 15/, 'the token is shaded');

    // Three prompts: a softmax over them, as the CLI's.
    await page.fill('#prompts', 'girl\nboy\ndesktop computer');
    await page.click('#explain-button');
    await page.waitForFunction(() => document.querySelectorAll('#explain-results .card').length === 3);
    shown = await cards(page, '#explain-results .card', 3);
    sameScores(shown, cliScores(['girl', 'boy', 'desktop computer']), 'three prompts');
    assert.deepStrictEqual(shown[2].tokens.map((t) => t.text), ['desktop', 'computer']);
    // The alpha slider reweights the heat layer without asking the server again.
    await page.$eval('#explain-form [data-alpha]', (slider) => {
      slider.value = '0.8';
      slider.dispatchEvent(new Event('input'));
    });
    const opacities = await page.$$eval('#explain-results img.heat', (imgs) => imgs.map((i) => i.style.opacity));
    assert.deepStrictEqual(opacities, ['0.8', '0.8', '0.8']);
    if (screenshots) await page.screenshot({ path: path.join(screenshots, 'serve_explain.png'), fullPage: true });

    // A prompt that is markup stays text.
    const markup = '<img src=x onerror="window.injected=1">';
    await page.fill('#prompts', markup);
    await page.click('#explain-button');
    await page.waitForFunction((m) => document.querySelector('#explain-results .card .label')?.textContent === m, markup);
    assert.strictEqual(await page.evaluate(() => window.injected), undefined, 'markup in a prompt ran');
    assert.strictEqual(await page.$$eval('#explain-results img[src="x"]', (n) => n.length), 0);

    // Entities tab.
    await page.click('#tab-entities');
    await page.setInputFiles('#entities-form [data-file]', IMAGE);
    await page.fill('#sentence', SENTENCE);
    await page.click('#entities-button');
    shown = await cards(page, '#entities-results .card', 4);
    assert.deepStrictEqual(shown.map((c) => c.label),
      [`sentence: ${SENTENCE}`, '1. a girl', '2. a boy', '3. a desktop computer']);
    sameScores(shown, cliScores([SENTENCE, 'a girl', 'a boy', 'a desktop computer']), 'the phrases');
    const marks = await page.$$eval('#sentence-view mark', (nodes) => nodes.map((m) => m.firstChild.textContent));
    assert.deepStrictEqual(marks, ['a girl', 'a boy', 'a desktop computer']);
    assert.strictEqual(await page.$eval('#sentence-view', (n) => n.textContent.replace(/\d/g, '')), SENTENCE);
    if (screenshots) await page.screenshot({ path: path.join(screenshots, 'serve_entities.png'), fullPage: true });

    assert.deepStrictEqual(problems, [], 'the page loaded and ran without errors');
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
  const { code, signal } = await exited;
  assert.strictEqual(code, 0, `the server's exit after SIGTERM: ${code} ${signal}\n${log()}`);
  console.log('ok: the demo page in Chromium');
}

main().catch((error) => {
  console.error(`FAIL: ${error.stack || error}`);
  process.exit(1);
});
