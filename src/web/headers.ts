import type { RequestHandler } from 'express';

/**
 * Headers on every answer: only the configured platforms (and Gofer itself) may frame Gofer's
 * pages, browsers never guess content types, and page addresses are not sent to other sites.
 */
export function securityHeaders(frameAncestors: string[]): RequestHandler {
  const csp = `frame-ancestors ${["'self'", ...new Set(frameAncestors)].join(' ')}`;
  return (_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    next();
  };
}

/** The origin of each URL (`https://lms.example.edu` of `https://lms.example.edu/x`), once each. */
export function origins(urls: string[]): string[] {
  return [...new Set(urls.map((u) => new URL(u).origin))];
}

/**
 * ltijs sets its state and session cookies itself and cannot mark them `Partitioned`: this adds
 * the attribute on the way out to every cookie that is `Secure; SameSite=None` (the cross-site
 * ones), so Chromium keeps sending them inside a platform's iframe while it blocks third-party
 * cookies.
 */
export function partitionCrossSiteCookies(): RequestHandler {
  return (_req, res, next) => {
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name: string, value: number | string | readonly string[]) =>
      setHeader(name, name.toLowerCase() === 'set-cookie' ? (Array.isArray(value) ? value.map(partitioned) : typeof value === 'string' ? partitioned(value) : value) : value);
    next();
  };
}

function partitioned(cookie: string): string {
  const attrs = cookie.split(';').map((a) => a.trim().toLowerCase());
  const crossSite = attrs.includes('secure') && attrs.includes('samesite=none');
  return crossSite && !attrs.includes('partitioned') ? `${cookie}; Partitioned` : cookie;
}
