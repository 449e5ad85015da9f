// `npm run test:browser`: the tests that drive Debian's Chromium (/usr/bin/chromium, or $CHROMIUM_PATH).
export default {
  files: ['dist/test/**/*.browser.test.js'],
  timeout: '5m',
  workerThreads: false,
};
