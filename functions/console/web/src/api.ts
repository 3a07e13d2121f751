// The JSON API, as the console and the portlet call it: a bearer token from a
// callback (the console's session, or the host page's), problem+json errors
// turned into ApiProblem, an Idempotency-Key on every effectful POST so a
// retried click never acts twice.

export type TokenSource = () => Promise<string> | string;

export interface FieldError {
  pointer: string;
  detail: string;
  /** A template part's line. */
  line?: number;
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail || title);
  }
}

export class Api {
  constructor(
    readonly token: TokenSource,
    private readonly base = "",
  ) {}

  async get<T>(path: string): Promise<T> {
    return this.send<T>("GET", path);
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>("PUT", path, body);
  }

  /**
   * A POST with an effect, under an Idempotency-Key: a fresh one per call unless the caller passes
   * the key of an attempt whose answer never came (see `Submission`), so a retry never acts twice.
   */
  async post<T>(path: string, body: unknown = {}, key: string = crypto.randomUUID()): Promise<T> {
    return this.send<T>("POST", path, body, key);
  }

  /** A POST that changes nothing (a template preview). */
  async postSafe<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>("POST", path, body);
  }

  /** A response body as text (a report's CSV). */
  async text(path: string): Promise<string> {
    const res = await this.fetch("GET", path);
    return res.text();
  }

  private async send<T>(method: string, path: string, body?: unknown, key?: string): Promise<T> {
    const res = await this.fetch(method, path, body, key);
    return (await res.json()) as T;
  }

  private async fetch(method: string, path: string, body?: unknown, key?: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiProblem(0, "Not reachable", "The service could not be reached. Check the connection and try again.");
    }
    if (res.ok) return res;
    let problem: { title?: string; detail?: string; message?: string; errors?: FieldError[] } = {};
    try {
      problem = await res.json();
    } catch {
      // Not JSON (a gateway's page): the status says enough.
    }
    throw new ApiProblem(res.status, problem.title ?? res.statusText, problem.detail ?? problem.message ?? "", problem.errors ?? []);
  }
}

/** Builds `path?k=v&…`, leaving out empty values. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export const enc = encodeURIComponent;

/**
 * One staff action that must happen once: while it is under way a second click is ignored, and when
 * its answer never came (the network failed) the next attempt reuses its Idempotency-Key, so the
 * service replays the first outcome instead of acting again. An answer, good or bad, ends it.
 */
export class Submission {
  busy = false;
  private key: string | null = null;

  async run<T>(send: (key: string) => Promise<T>): Promise<T | undefined> {
    if (this.busy) return undefined;
    this.busy = true;
    this.key ??= crypto.randomUUID();
    try {
      const out = await send(this.key);
      this.key = null;
      return out;
    } catch (e) {
      if (!(e instanceof ApiProblem && e.status === 0)) this.key = null;
      throw e;
    } finally {
      this.busy = false;
    }
  }
}
