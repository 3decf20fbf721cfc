// Builds the pages' bundles into dist/: one ES module per page, and the stylesheet.
// `node build.mjs` (scripts/build-web.sh runs it after `npm ci` and the type check).
import { build } from 'esbuild';

const pages = ['index', 'signin', 'greenroom', 'meeting', 'host'];

await build({
  entryPoints: [...pages.map((page) => `src/pages/${page}.ts`), 'src/app.css'],
  outdir: 'dist',
  entryNames: '[name]',
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
  // Shared code goes into each page's bundle: five pages, one small shared core, no
  // chunk loading to get wrong behind a proxy.
  splitting: false,
});
