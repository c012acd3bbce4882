// The bundle (npm run build), or the source where it is not built.
const { dial } = await import('/js/dist/tp.min.js').then(m => { window.tpBundle = true; return m }, () => import('/js/src/tp.js'))

const $ = id => document.getElementById(id)
const log = line => { $('log').textContent = (line + '\n' + $('log').textContent).slice(0, 2000) }

const peer = await dial(location.origin.replace(/^http/, 'ws') + '/tp')
window.peer = peer // for the end-to-end test and the console
window.notes = []

$('status').textContent = 'connected'
peer.addEventListener('close', ev => { $('status').textContent = 'disconnected: ' + ev.detail.message })
peer.addEventListener('reconnect', async () => {
  $('status').textContent = 'reconnected'
  $('counter').textContent = await peer.call('/counter/get', {})
})

// What the server calls and pushes in the page.
peer.handle('/ui/tick', n => { $('counter').textContent = n })
peer.handle('/ui/notify', text => { window.notes.push(text); log('server says: ' + text) })
peer.handle('/ui/add', ([a, b]) => a + b)
peer.handleStream('/page/upper', async st => {
  for await (const word of st) await st.send(String(word).toUpperCase())
})

$('incr').onclick = async () => {
  try {
    $('counter').textContent = await peer.call('/counter/incr', 1, { timeout: 2000 })
  } catch (e) {
    log(`incr failed: ${e.code} ${e.message}`)
  }
}
$('counter').textContent = await peer.call('/counter/get', {})
log('ready')
