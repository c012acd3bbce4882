// The Go peer of the tests: examples/browser, built once and started per
// test on loopback.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
let bin

function build () {
  if (bin) return bin
  bin = join(mkdtempSync(join(tmpdir(), 'tp-js-')), 'browser')
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: join(root, 'examples', 'browser'), stdio: 'inherit' })
  return bin
}

/** start runs the Go server on addr (a free port by default) and resolves once it listens. */
export function start (addr = '127.0.0.1:0') {
  const proc = spawn(build(), ['-addr', addr, '-js', join(root, 'js')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => proc.on('exit', resolve))
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout })
    lines.on('line', line => {
      if (line.startsWith('LISTEN ')) {
        const a = line.slice(7)
        resolve({
          addr: a,
          url: `ws://${a}/tp`,
          kill: async (sig = 'SIGKILL') => { proc.kill(sig); await exited },
          exited
        })
      }
    })
    proc.on('exit', code => reject(new Error(`the Go server exited (${code}) before it listened`)))
  })
}
