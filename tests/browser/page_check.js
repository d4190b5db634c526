// Loads a static page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// and checks it the way a user would see it.
//   node tests/browser/page_check.js PAGE.html [--expect SELECTOR=N ...]
//   node tests/browser/page_check.js --available      (exit 0 when it can run, 77 when not)
// Fails (exit 1) when the page logs an error to the console, throws, has a load that fails or is
// blocked (its Content Security Policy, say), or has an <img> that does not load and decode; and
// when a CSS selector does not match the expected number of elements. Prints the counts and every
// problem found. Exit 77 when playwright-core or Chromium is missing; 2 when Chromium cannot be
// driven.
'use strict';

const { chromiumOrSkip } = require('./browser');
const path = require('path');
const { pathToFileURL } = require('url');

const chromium = chromiumOrSkip();

const [page, ...rest] = process.argv.slice(2);
if (page === '--available') process.exit(0);
const expectations = [];
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] !== '--expect' || rest[i + 1] === undefined) {
    console.error('usage: page_check.js PAGE.html [--expect SELECTOR=N ...]');
    process.exit(2);
  }
  const at = rest[i + 1].lastIndexOf('=');
  expectations.push([rest[i + 1].slice(0, at), Number(rest[i + 1].slice(at + 1))]);
}

async function main() {
  const browser = await chromium.launch();
  const problems = [];
  const counts = [];
  try {
    const tab = await browser.newPage();
    tab.on('pageerror', (error) => problems.push(`uncaught exception: ${error.message}`));
    tab.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'assert') {
        problems.push(`console error: ${message.text()}`);
      }
    });
    tab.on('requestfailed', (request) => {
      problems.push(`load failed: ${request.url()} (${request.failure()?.errorText ?? 'blocked'})`);
    });
    await tab.goto(pathToFileURL(path.resolve(page)).href, { waitUntil: 'load', timeout: 60000 });
    // Every image eager (lazy ones outside the viewport would never load), each decoded.
    const images = await tab.evaluate(() => Promise.all([...document.querySelectorAll('img')].map((img) => {
      img.loading = 'eager';
      return img.decode().then(() => img.naturalWidth > 0, () => false)
        .then((ok) => ({ src: img.getAttribute('src'), ok }));
    })));
    for (const image of images) if (!image.ok) problems.push(`image did not load: ${image.src}`);
    for (const [selector, expected] of expectations) {
      const found = await tab.$$eval(selector, (nodes) => nodes.length);
      counts.push(`${selector} x${found}`);
      if (found !== expected) problems.push(`${selector}: ${found} elements, expected ${expected}`);
    }
  } finally {
    await browser.close();
  }
  console.log(`${page}: ${counts.join(', ')}`);
  for (const problem of problems) console.log(`  ${problem}`);
  return problems.length ? 1 : 0;
}

main().then((code) => process.exit(code), (error) => {
  console.error(`page_check: ${error.message}`);
  process.exit(2);
});
