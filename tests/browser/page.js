// What a site's own code does to send to Baton: load analytics-next with its settings
// inline (no request to Segment's CDN), then identify, page and track. On leaving the
// page, a beacon, as sites send one on unload. The test writes window.BATON into the page.
import { AnalyticsBrowser } from '@segment/analytics-next'

const { writeKey, apiHost, userId, strategy } = window.BATON

const segmentio = { apiHost, protocol: 'http' }
if (strategy === 'batching') {
  segmentio.deliveryStrategy = { strategy: 'batching', config: { size: 3, timeout: 1000 } }
}

const analytics = AnalyticsBrowser.load(
  {
    writeKey,
    cdnSettings: {
      integrations: { 'Segment.io': { apiKey: writeKey } },
      metrics: { sampleRate: 0 },
    },
  },
  { integrations: { 'Segment.io': segmentio } }
)

window.batonCalls = (async () => {
  await analytics.identify(userId, { email: 'Ada.Lovelace@Example.com', company: 'Acme' })
  await analytics.page()
  await analytics.track('Demo Requested', { plan: 'team' })
  return 'sent'
})()

window.addEventListener('pagehide', () => {
  const message = { writeKey, userId, type: 'track', event: 'Page Left' }
  navigator.sendBeacon(`http://${apiHost}/t`, JSON.stringify(message))
})
