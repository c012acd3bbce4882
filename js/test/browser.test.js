// End to end in a real headless Chromium (Debian's chromium, driven by
// playwright-core): the example page (examples/browser) loads the client,
// calls the Go server, receives pushes, answers the server's calls, and
// survives a server restart. Each is checked in the page and at the Go
// side (through a second peer, this process's own). A screenshot of the
// page is left in test-output/ for a person to look at.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { chromium } from 'playwright-core'
import { dial } from '../src/tp.js'
import { start } from './server.js'

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
let browser

before(async () => {
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: install Debian's chromium package (apt-get install -y chromium), as .ci/run does, or set CHROMIUM`)
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
})
after(async () => { await browser?.close() })

test('the example page in Chromium', async () => {
  let srv = await start()
  const go = await dial(srv.url, { minDelay: 50, maxDelay: 200 }) // the test's own view of the Go side
  const ctx = await browser.newContext()
  try {
    const page = await ctx.newPage()
    const errors = []
    page.on('pageerror', e => errors.push(e.message)) // an uncaught throw in the page
    await page.goto(`http://${srv.addr}/`)
    await page.waitForFunction(() => window.peer && document.getElementById('status').textContent === 'connected')
    assert.equal(await page.evaluate(() => window.tpBundle), true) // the minified bundle, not the source

    // The page calls the server: the button, and the server's counter.
    await page.click('#incr')
    await page.waitForFunction(() => document.getElementById('counter').textContent === '1')
    assert.equal(await go.call('/counter/get', {}), 1)

    // The server pushes to the page: another client's increment shows.
    assert.equal(await go.call('/counter/incr', 5), 6)
    await page.waitForFunction(() => document.getElementById('counter').textContent === '6')

    // The server calls into the page, and pushes to it.
    assert.equal(await page.evaluate(() => window.peer.call('/ask_page', [2, 3])), 'sum=5 missing=not found')
    assert.deepEqual(await page.evaluate(() => window.notes), ['hello from go'])
    assert.deepEqual(await page.evaluate(() => window.peer.call('/open_page_stream', ['ab', 'c'])), ['AB', 'C'])

    // Cancellation from the page reaches the Go handler.
    const canceled = await page.evaluate(async () => {
      const ac = new AbortController()
      const call = window.peer.call('/slow', 5000, { signal: ac.signal })
      setTimeout(() => ac.abort(), 50)
      try { await call } catch (e) { return e.code }
    })
    assert.equal(canceled, 12)
    for (let i = 0; i < 100 && !/canceled/.test(await go.call('/last_cancel', {})); i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.match(await go.call('/last_cancel', {}), /canceled/)

    // gzip by CompressionStream, both ways.
    assert.equal(await page.evaluate(() => window.peer.call('/math/add', [40, 2], { gzip: true })), 42)

    // The server restarts on the same port: the page reconnects.
    const addr = srv.addr
    await srv.kill('SIGKILL')
    await page.waitForFunction(() => /disconnected/.test(document.getElementById('status').textContent))
    srv = await start(addr)
    await page.waitForFunction(() => document.getElementById('status').textContent === 'reconnected', null, { timeout: 10000 })
    await page.click('#incr') // the new server's counter starts at 0
    await page.waitForFunction(() => document.getElementById('counter').textContent === '1')
    const again = await dial(srv.url)
    assert.equal(await again.call('/counter/get', {}), 1)
    again.close()

    mkdirSync(new URL('../test-output/', import.meta.url), { recursive: true })
    await page.screenshot({ path: new URL('../test-output/example-page.png', import.meta.url).pathname })
    assert.deepEqual(errors, [])
  } finally {
    go.close()
    await ctx.close()
    await srv.kill()
  }
})
