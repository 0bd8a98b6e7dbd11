import { defineConfig } from 'vitest/config';

// Library build: one self-contained IIFE script, served by Django as
// /static/widget/supportai-widget.js (STATICFILES_DIRS maps frontend/dist -> widget/).
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    minify: true,
    lib: {
      entry: 'src/main.ts',
      name: 'SupportAIWidget',
      formats: ['iife'],
      fileName: () => 'supportai-widget.js',
    },
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.ts'],
    pool: 'threads',
    maxWorkers: 2,
  },
});
