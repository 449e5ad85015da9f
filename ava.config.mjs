// `npm test`: everything that runs on a bare Node machine. The browser tests (*.browser.test.js, headless Chromium)
// run with `npm run test:browser`, configured in ava.browser.config.mjs.
export default {
  files: ['dist/test/**/*.test.js', '!dist/test/**/*.browser.test.js'],
  timeout: '5m',
  workerThreads: false,
};
