// Vite builds the UI into dist/, which the API serves at "/" (api/web.py).
// `npm run dev` proxies /api to a local API (EARTHPLAT_API, default http://127.0.0.1:8000).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: {
    proxy: { "/api": process.env.EARTHPLAT_API || "http://127.0.0.1:8000" },
  },
});
