/**
 * Path globs for an assignment's support files: `*` and `?` within one path segment, `**` for
 * any number of segments; patterns are relative paths with `/` between segments.
 */

/** Why a pattern cannot be used, or undefined when it can. */
export function supportPatternProblem(pattern: string): string | undefined {
  if (pattern.startsWith('/') || /^[A-Za-z]:/.test(pattern)) return 'must be relative to the assignment directory';
  if (pattern.includes('\\')) return 'must use / between folders';
  if (pattern.split('/').some((part) => part === '..')) return 'must not leave the assignment directory (..)';
  return undefined;
}

/** A matcher for a relative path (with `/` between segments) against any of the patterns. */
export function globMatcher(patterns: string[]): (relPath: string) => boolean {
  const res = patterns.map(globToRegExp);
  return (relPath) => res.some((re) => re.test(relPath));
}

export function globToRegExp(pattern: string): RegExp {
  const clean = pattern.replace(/^\.\//, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i]!;
    if (c === '*' && clean[i + 1] === '*') {
      // `**/` is any number of whole segments; a trailing `**` is everything below
      if (clean[i + 2] === '/') {
        re += '(?:[^/]+/)*';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // a directory pattern takes everything under it
  return new RegExp(`^${re}(?:/.*)?$`);
}
