#!/usr/bin/env node
/*
 * Drives the sidecar's /status page in Debian's chromium (puppeteer-core,
 * never a downloaded browser) and prints what a user would see as JSON:
 * the tables' rows (text and exact values), what sorting and filtering
 * did, and every console message, failed request and dialog.
 *
 *   node status_page.js check URL ROUTE_FILTER TENANT_FILTER SCREENSHOT
 *   node status_page.js screenshot URL SCREENSHOT
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'obs-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync',
           '--user-data-dir=' + profile],
  });
  return { browser, profile };
}

/* Everything the page says that a test must see. */
function watch(page, log) {
  page.on('console', (m) => log.console.push({ type: m.type(),
                                                text: m.text() }));
  page.on('pageerror', (e) => log.pageErrors.push(String(e)));
  page.on('requestfailed', (r) => log.failed.push({
    url: r.url(), error: r.failure() && r.failure().errorText }));
  page.on('response', (r) => {
    log.requests.push({ url: r.url(), status: r.status() });
    if (r.status() >= 400) log.failed.push({ url: r.url(),
                                             status: r.status() });
  });
  page.on('dialog', async (d) => {
    log.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss();
  });
}

async function seq(page) {
  return page.evaluate(() => Number(document.body.dataset.seq || 0));
}

/* Waits for the render that follows an action. */
async function rendered(page, before) {
  await page.waitForFunction((b) => Number(document.body.dataset.seq || 0)
                             > b, { timeout: 15000 }, before);
}

function dump(page) {
  return page.evaluate(() => {
    const rows = (id) => [...document.querySelectorAll('#' + id
                                                       + ' tbody tr')]
      .filter((tr) => !tr.querySelector('td.empty'))
      .map((tr) => {
        const cells = {};
        tr.querySelectorAll('td[data-col]').forEach((td) => {
          cells[td.dataset.col] = { text: td.textContent,
                                    value: td.dataset.value, cls: td.className };
        });
        return { data: Object.assign({}, tr.dataset), cells,
                 texts: [...tr.children].map((td) => td.textContent),
                 links: [...tr.querySelectorAll('a')].map((a) => a.href) };
      });
    const sorted = (id) => {
      const th = document.querySelector('#' + id + ' th[aria-sort]');
      return th ? { col: th.dataset.col, order: th.getAttribute('aria-sort') }
                : null;
    };
    const cards = {};
    document.querySelectorAll('.card').forEach((c) => {
      const v = c.querySelector('.value');
      cards[c.dataset.card] = { text: v.textContent, value: v.dataset.value,
                                cls: v.className };
    });
    return {
      snapshot: Number(document.body.dataset.snapshot),
      routes: rows('routes'), tenants: rows('tenants'),
      business: rows('business'), destinations: rows('destinations'),
      sortedRoutes: sorted('routes'), sortedTenants: sorted('tenants'),
      pagers: [...document.querySelectorAll('.pager')]
        .map((p) => p.textContent),
      cards,
      headerLinks: [...document.querySelectorAll('#links a')]
        .map((a) => a.href),
      images: document.querySelectorAll('img').length,
      scripts: [...document.querySelectorAll('script')]
        .map((s) => s.getAttribute('src')),
      sparklines: document.querySelectorAll('#routes svg.spark').length,
      conn: document.getElementById('conn').textContent,
      xss: window.__xss || null,
    };
  });
}

/* Types into a filter and waits for the render made with it (a poll
   may render in between, with the old one). */
async function typeFilter(page, selector, which, text) {
  await page.focus(selector);
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  if (text) await page.keyboard.type(text);
  await page.waitForFunction((k, t) => document.body.dataset[k] === t,
                             { timeout: 15000 }, which, text);
  return dump(page);
}

async function clickAndDump(page, selector) {
  const before = await seq(page);
  await page.click(selector);
  await rendered(page, before);
  return dump(page);
}

async function check(url, routeFilter, tenantFilter, shot) {
  const { browser, profile } = await launch();
  const log = { console: [], pageErrors: [], failed: [], dialogs: [],
                requests: [] };
  const out = { log };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 1000 });
    watch(page, log);
    const started = Date.now();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.seq,
                               { timeout: 15000 });
    out.firstRenderMs = Date.now() - started;
    out.initial = await dump(page);
    await page.screenshot({ path: shot, fullPage: true });

    out.byRequests = await clickAndDump(page, '#routes th[data-col=requests]');
    out.byRequestsAgain = await clickAndDump(page,
                                             '#routes th[data-col=requests]');
    out.byService = await clickAndDump(page, '#routes th[data-col=service]');
    out.tenantsByErrors = await clickAndDump(page, '#rank-errors');
    out.tenantsByTraffic = await clickAndDump(page, '#rank-traffic');
    out.routeFiltered = await typeFilter(page, '#route-filter', 'route',
                                         routeFilter);
    out.routeCleared = await typeFilter(page, '#route-filter', 'route', '');
    out.tenantFiltered = await typeFilter(page, '#tenant-filter', 'tenant',
                                          tenantFilter);
    out.tenantCleared = await typeFilter(page, '#tenant-filter', 'tenant', '');

    /* the page goes on polling by itself */
    const before = await seq(page);
    await rendered(page, before);
    out.polled = await dump(page);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return out;
}

async function screenshot(url, shot) {
  const { browser, profile } = await launch();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.seq,
                               { timeout: 15000 });
    await page.screenshot({ path: shot, fullPage: true });
    return { shot };
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const [mode, url, ...rest] = process.argv.slice(2);
(mode === 'check' ? check(url, rest[0], rest[1], rest[2])
                  : screenshot(url, rest[0]))
  .then((out) => process.stdout.write(JSON.stringify(out) + '\n'))
  .catch((e) => { process.stderr.write(String(e.stack || e) + '\n');
                  process.exit(1); });
