// Copies the pinned browser dependencies from node_modules into web/static/vendor,
// so the console is served by the binary with no CDN. Run: npm ci && npm run vendor
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const src = new URL("./node_modules/leaflet/", import.meta.url);
const dst = new URL("../static/vendor/leaflet/", import.meta.url);
const { version } = JSON.parse(readFileSync(new URL("package.json", src)));

rmSync(dst, { recursive: true, force: true });
mkdirSync(new URL("images/", dst), { recursive: true });
for (const f of ["leaflet.js", "leaflet.css"]) cpSync(new URL("dist/" + f, src), new URL(f, dst));
cpSync(new URL("dist/images/", src), new URL("images/", dst), { recursive: true });
cpSync(new URL("LICENSE", src), new URL("LICENSE", dst));
writeFileSync(new URL("README.md", dst),
  `Leaflet ${version} (BSD-2-Clause, see LICENSE), from the npm registry package ` +
  `\`leaflet@${version}\`: dist/leaflet.js, dist/leaflet.css and dist/images/, unmodified.\n` +
  `Pinned in web/console/package.json and package-lock.json; refresh with ` +
  `\`cd web/console && npm ci && npm run vendor\`, then delete node_modules.\n`);
console.log(`vendored leaflet ${version} into web/static/vendor/leaflet`);
