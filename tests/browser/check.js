// Renders pages of `ratchet serve` in Debian's headless Chromium (through
// playwright-core, which downloads no browser of its own) at a phone and a
// desktop width, and reports what a person would meet:
//   node check.js <screenshot dir> '<json: [{name, url, charts: {id: points}}]>'
// Prints one JSON object: per page its status, console errors, dialogs (a
// script that ran), the points of each chart, whether every chart has an
// accessible name, whether the phone layout scrolls sideways; screenshots
// go to <dir>/<name>-<width>.png. Exits non-zero only when it cannot run.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [outDir, pagesJson] = process.argv.slice(2);
const pages = JSON.parse(pagesJson);

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ratchet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
           '--disable-component-update', '--disable-sync'],
  });
  const report = { pages: [] };
  try {
    for (const p of pages) {
      const out = { name: p.name, expected: p.charts, console_errors: [], dialogs: [], charts: {}, labelled: true };
      for (const width of [390, 1280]) {
        const page = await context.newPage();
        await page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
        page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(`${width}: ${m.text()}`); });
        page.on('pageerror', (e) => out.console_errors.push(`${width}: ${e.message}`));
        page.on('dialog', async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
        const res = await page.goto(p.url, { waitUntil: 'load' });
        out.status = res.status();
        const seen = await page.evaluate(() => {
          const charts = {};
          let labelled = true;
          for (const svg of document.querySelectorAll('svg[data-chart]')) {
            charts[svg.dataset.chart] = svg.querySelectorAll('circle.pt, rect.bar').length;
            const ids = (svg.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean);
            const named = ids.length > 0 && ids.every((id) => (document.getElementById(id) || {}).textContent);
            labelled = labelled && svg.getAttribute('role') === 'img' && named;
          }
          return { charts, labelled, overflow: document.documentElement.scrollWidth > window.innerWidth + 1 };
        });
        out.charts = seen.charts;
        out.labelled = out.labelled && seen.labelled;
        out[`overflow_${width}`] = seen.overflow;
        await page.screenshot({ path: path.join(outDir, `${p.name}-${width}.png`), fullPage: true });
        await page.close();
      }
      report.pages.push(out);
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(report));
})().catch((e) => { console.error(e); process.exit(1); });
