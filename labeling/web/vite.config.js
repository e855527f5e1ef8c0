// Vite builds the UI into dist/, which the API serves at "/" (api/web.py).
// `npm run dev` proxies /api to a local API (EARTHPLAT_API, default http://127.0.0.1:8000).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig } from "vite";

// The API's /docs page (Swagger UI) loads these from /swagger/ instead of a CDN, so the docs
// work on a machine without internet access (api/web.py: mount_docs).
const SWAGGER_FILES = ["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"];

function swaggerUi() {
  const root = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  return {
    name: "earthplat-swagger-ui",
    apply: "build",
    generateBundle() {
      for (const name of SWAGGER_FILES) {
        let source = readFileSync(join(root, name));
        if (name.endsWith(".css")) {
          // the .map is not copied: drop its reference, so browsers do not ask for it
          source = source.toString("utf8").replace(/\/\*# sourceMappingURL=[^*]*\*\//g, "");
        }
        this.emitFile({ type: "asset", fileName: `swagger/${name}`, source });
      }
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [swaggerUi()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: {
    proxy: { "/api": process.env.EARTHPLAT_API || "http://127.0.0.1:8000" },
  },
});
