// Prints the bundle's size, minified and gzipped: the README's number.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const min = readFileSync(new URL('../dist/tp.min.js', import.meta.url))
const gz = gzipSync(min, { level: 9 })
console.log(`dist/tp.min.js: ${min.length} bytes minified, ${gz.length} bytes gzipped`)
if (gz.length > 10 * 1024) {
  console.error('over the 10 KB budget')
  process.exit(1)
}
