// What the browser tests share: Debian's Chromium (/usr/bin/chromium, never a downloaded one)
// under playwright-core, or exit 77 (CTest's skip) when either is missing.
'use strict';

const fs = require('fs');

const CHROMIUM = '/usr/bin/chromium';

function chromiumOrSkip() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (error) {
    console.log('skipped: playwright-core is not installed (npm ci --prefix tests/browser)');
    process.exit(77);
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`skipped: ${CHROMIUM} is not installed (Debian package chromium)`);
    process.exit(77);
  }
  return { launch: () => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }) };
}

module.exports = { chromiumOrSkip };
