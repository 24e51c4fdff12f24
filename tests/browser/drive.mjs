// Opens one page in headless chromium, waits for its calls, leaves it (pagehide), and
// reports what the browser did as JSON lines on stdout. Closes when stdin closes.
// Usage: node drive.mjs <page url> <profile dir>
import puppeteer from 'puppeteer-core'

const [url, profile] = process.argv.slice(2)
const report = (event) => process.stdout.write(JSON.stringify(event) + '\n')

const browser = await puppeteer.launch({
  executablePath: process.env.BATON_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
})
try {
  const page = await browser.newPage()
  page.on('request', (r) => report({ event: 'request', method: r.method(), url: r.url() }))
  page.on('response', (r) =>
    report({ event: 'response', method: r.request().method(), url: r.url(), status: r.status() })
  )
  page.on('requestfailed', (r) =>
    report({ event: 'failed', url: r.url(), error: r.failure()?.errorText })
  )
  page.on('console', (m) => report({ event: 'console', type: m.type(), text: m.text() }))
  page.on('pageerror', (e) => report({ event: 'pageerror', text: String(e) }))

  await page.goto(url, { waitUntil: 'load' })
  const result = await page.evaluate(() => window.batonCalls)
  report({ event: 'calls', result })
  await page.goto('about:blank') // pagehide: the beacon
  report({ event: 'left' })
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
} catch (error) {
  report({ event: 'error', text: String(error?.stack ?? error) })
  process.exitCode = 1
} finally {
  await browser.close()
}
