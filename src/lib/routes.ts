/** One route an express app answers: its method ("all" for any) and its full path pattern. */
export interface RouteEntry {
  method: string;
  path: string;
}

interface AnyLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: unknown;
  /** router 2 (express 5): the path given to `use`. */
  rawPath?: string | string[];
  /** express 4: the mount path compiled to a regular expression. */
  regexp?: RegExp & { fast_slash?: boolean };
}

/**
 * Every route of an express 4 or 5 app and the routers mounted in it, as `use` and the verbs
 * declared them. A mounted app is hidden behind a wrapper: list it on its own, with its mount path. Read at start-up for the log, so what the service answers is on record
 * (and a test can hit every route without keeping its own list).
 */
export function listRoutes(app: unknown, prefix = ''): RouteEntry[] {
  const out: RouteEntry[] = [];
  walk(stackOf(app) ?? [], prefix, out);
  return out;
}

function stackOf(handle: unknown): AnyLayer[] | undefined {
  const h = handle as { stack?: AnyLayer[]; router?: { stack?: AnyLayer[] }; _router?: { stack?: AnyLayer[] } } | undefined;
  // express 4's `app.router` is a getter that throws: look at `_router` first
  return h?.stack ?? h?._router?.stack ?? h?.router?.stack;
}

function walk(stack: AnyLayer[], prefix: string, out: RouteEntry[]): void {
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      let methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]);
      // express 4's `all` declares the route for each of its ~30 verbs
      if (methods.includes('_all') || methods.length >= 20) methods = ['all'];
      for (const p of paths) for (const m of methods) out.push({ method: m, path: join(prefix, p) });
      continue;
    }
    const inner = stackOf(layer.handle);
    if (inner) walk(inner, join(prefix, mountPath(layer)), out);
  }
}

function mountPath(layer: AnyLayer): string {
  if (typeof layer.rawPath === 'string') return layer.rawPath;
  if (Array.isArray(layer.rawPath)) return String(layer.rawPath[0] ?? '');
  if (!layer.regexp || layer.regexp.fast_slash) return '';
  // express 4 compiles '/lti' to /^\/lti\/?(?=\/|$)/i
  return layer.regexp.source.replace(/^\^/, '').replace(/\\\/\?\(\?=\\\/\|\$\)$/, '').replace(/\\\//g, '/');
}

function join(a: string, b: string): string {
  const joined = a.replace(/\/$/, '') + (b.startsWith('/') ? b : `/${b}`);
  return joined || '/';
}
