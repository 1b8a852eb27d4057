// npm's `prepare` (npm ci, npm install without arguments, npm pack): builds the package bundle of
// daemon/tools/vendor.ts when it can. It cannot without the dev dependencies (esbuild, and the pinned Node 22 that
// runs .ts files): an install with --omit=dev, or `npm pack` in a checkout without node_modules (the Dockerfile). Then
// it says so in one line and succeeds: a daemon without the bundle loads its packages from node_modules. Plain
// JavaScript, so that the Node it finds (npm's, maybe older) can run it.
const [major, minor] = process.versions.node.split('.').map(Number)
/** The first Node 22 that strips the types of an imported .ts file by itself. */
const TYPE_STRIPPING = [22, 18]

function skip (why) {
  process.stderr.write(`the package bundle is not built (${why}): a daemon loads its packages from node_modules\n`)
  process.exit(0)
}

if (major < TYPE_STRIPPING[0] || (major === TYPE_STRIPPING[0] && minor < TYPE_STRIPPING[1])) skip(`Node ${process.versions.node} cannot run daemon/tools/vendor.ts`)
try {
  await import('esbuild')
} catch {
  skip('esbuild, a dev dependency, is not installed')
}
const { buildVendor, VENDOR_DIR } = await import('../daemon/tools/vendor.ts')
const manifest = await buildVendor()
// On stderr, as npm's own lines about the script: `npm pack --json` prints its JSON on stdout after it.
process.stderr.write(`the package bundle: ${Object.keys(manifest.specifiers).length} package specifiers in ${VENDOR_DIR}\n`)
