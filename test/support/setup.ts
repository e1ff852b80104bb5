/** Runs in every test file before its tests (vitest.config.ts `setupFiles`). */
import { afterEach, beforeEach } from 'vitest';
import { markTestClocks, resetTestClocks } from './clock.js';

// Each test starts at the same simulated instant, whatever the tests before it advanced:
// a test that fails or times out after moving a shared app's clock leaves nothing behind.
beforeEach(markTestClocks);
afterEach(resetTestClocks);
