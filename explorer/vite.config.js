import { defineConfig } from 'vite';

// A static build (dist/) that serve.js, or any static file server, can serve.
export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000 },
});
