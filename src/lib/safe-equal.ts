import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares a secret the caller sent with the expected one in constant time: both are hashed to
 * equal-length buffers first, so neither their contents nor their lengths leak through timing.
 */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
