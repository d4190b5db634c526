#!/usr/bin/env bash
# The HTML report in a real browser: headless Chromium loads the fixture report (overlays under
# awkward file names, prompts and names that try to inject markup, an error) with no console
# error, no blocked or broken load and no script, and shows every image, prompt and error.
# The fixture is written by html_report_test (built next to the clipxai binary). A page with a
# broken image and a script shows the check itself fails when it should.
set -eu
BIN=$1
SRC=$2
TMP=$3

CHECK="node $SRC/tests/browser/page_check.js"
if ! command -v node >/dev/null || ! $CHECK --available; then
  echo "skipped: node, playwright-core (npm ci --prefix tests/browser) or /usr/bin/chromium is missing"
  exit 0
fi

rm -rf "$TMP"
mkdir -p "$TMP"
CLIPXAI_HTML_REPORT_DIR="$TMP/report" "$(dirname "$BIN")/tests/html_report_test" \
  --gtest_filter=HtmlReport.FixtureReportLinksEveryOverlayToAFile >"$TMP/fixture.log" ||
  { cat "$TMP/fixture.log"; exit 1; }

$CHECK "$TMP/report/report.html" \
  --expect .result=3 --expect .prompt=4 --expect img.overlay=4 --expect .error=1 \
  --expect .token=8 --expect script=0 --expect 'img[src="x"]=0' --expect b=0

mkdir -p "$TMP/broken"
cat >"$TMP/broken/page.html" <<'HTML'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title></head>
<body><img class="overlay" src="missing.png"><script>undefined_function()</script></body></html>
HTML
if $CHECK "$TMP/broken/page.html" --expect img.overlay=1 >"$TMP/broken.log"; then
  echo "the page check passed a page with a broken image and a failing script"
  exit 1
fi
grep -q "image did not load: missing.png" "$TMP/broken.log"
grep -q "uncaught exception" "$TMP/broken.log"
echo "html report loads cleanly in Chromium"
