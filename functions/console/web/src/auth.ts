// Staff sign-in. On AWS: OpenID Connect authorization code with PKCE against
// the issuer the API's JWT authorizer trusts, the console's client id as
// audience. Locally: the local gateway's sign-in page mints a token for a
// chosen tenant and scope and hands it back in the URL fragment.
//
// Tokens live in memory only (never localStorage): a reload signs in again,
// silently where the issuer's session allows. The PKCE verifier and state
// survive the redirect in sessionStorage, and are removed when used.

export interface ConsoleConfig {
  /** The issuer (`JwtIssuer`); empty when only the local sign-in exists. */
  issuer: string;
  client_id: string;
  /** The local stack's sign-in page, when there is one. */
  local_sign_in: string | null;
  /** Scopes to ask the issuer for. */
  scopes: string;
}

export interface Session {
  token: string;
  expiresAt: number;
  tenantId: string;
  subject: string;
  scopes: Set<string>;
}

/** What the staff scopes allow (they nest: admin ⊇ write ⊇ read). */
export function can(session: Session | null, need: "read" | "write" | "admin"): boolean {
  if (!session) return false;
  const order = ["read", "write", "admin"];
  return order.slice(order.indexOf(need)).some((s) => session.scopes.has(`portal:${s}`));
}

/** The claims of a JWT, unverified: the API verifies it; here it only says what to offer. */
export function sessionFromToken(token: string): Session {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  const scope = typeof claims.scope === "string" ? claims.scope : "";
  return {
    token,
    expiresAt: (Number(claims.exp) || 0) * 1000,
    tenantId: String(claims.tenant_id ?? ""),
    subject: String(claims.sub ?? ""),
    scopes: new Set(scope.replace(/[[\]]/g, "").split(/[\s,]+/).filter(Boolean)),
  };
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** RFC 7636: a random verifier and its S256 challenge. */
export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  return { verifier, challenge: base64url(digest) };
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
}

const PENDING = "portal-access.pkce";
const LOCAL_STATE = "portal-access.local-state";

/** Renews a minute before expiry. */
const RENEW_EARLY_MS = 60_000;

export class Auth {
  session: Session | null = null;
  private refreshToken: string | null = null;
  private discovery: Discovery | null = null;
  private timer: number | undefined;
  /** The renewal under way: callers that need a token meanwhile wait for it, not start another. */
  private renewing: Promise<void> | null = null;

  constructor(
    readonly config: ConsoleConfig,
    private readonly onChange: () => void,
  ) {}

  /** The console's own URL, where the issuer (or the local page) sends staff back. */
  private get redirectUri(): string {
    return location.origin + location.pathname;
  }

  /** Finishes a sign-in that came back to this page, if one did. */
  async resume(): Promise<void> {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const local = fragment.get("access_token");
    if (local) {
      // Only the local stack hands a token back in the fragment, and only for a sign-in this
      // tab started (its state): a link carrying someone else's token signs nobody in.
      const expected = sessionStorage.getItem(LOCAL_STATE);
      sessionStorage.removeItem(LOCAL_STATE);
      const back = fragment.get("back") ?? "#/contacts";
      history.replaceState(null, "", location.pathname + (back.startsWith("#/") ? back : "#/contacts"));
      if (!this.config.local_sign_in || !expected || fragment.get("state") !== expected) {
        throw new Error("The sign-in answer did not match the request; sign in again.");
      }
      this.accept(local);
      return;
    }
    const query = new URLSearchParams(location.search);
    const code = query.get("code");
    const pending = sessionStorage.getItem(PENDING);
    if (!code || !pending) return;
    sessionStorage.removeItem(PENDING);
    const { verifier, state, back } = JSON.parse(pending);
    history.replaceState(null, "", location.pathname + (back || "#/contacts"));
    if (query.get("state") !== state) throw new Error("The sign-in answer did not match the request; sign in again.");
    await this.exchange({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: this.redirectUri });
  }

  /** Starts a sign-in: to the local page, or to the issuer with PKCE. */
  async signIn(back = location.hash || "#/contacts"): Promise<void> {
    if (this.config.local_sign_in) {
      const url = new URL(this.config.local_sign_in, location.origin);
      const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
      sessionStorage.setItem(LOCAL_STATE, state);
      url.searchParams.set("state", state);
      url.searchParams.set("redirect_uri", this.redirectUri);
      url.searchParams.set("back", back);
      location.assign(url.toString());
      return;
    }
    const d = await this.discover();
    const { verifier, challenge } = await pkcePair();
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back }));
    const url = new URL(d.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.config.client_id,
      redirect_uri: this.redirectUri,
      scope: this.config.scopes,
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    }).toString();
    location.assign(url.toString());
  }

  signOut(): void {
    this.session = null;
    this.refreshToken = null;
    clearTimeout(this.timer);
    this.onChange();
  }

  /** The current token, for the API client; renewed first when it is about to run out. */
  async token(): Promise<string> {
    if (this.session && this.session.expiresAt - Date.now() < RENEW_EARLY_MS) await this.renew();
    if (!this.session) throw new Error("Signed out");
    return this.session.token;
  }

  private accept(token: string, refresh?: string): void {
    this.session = sessionFromToken(token);
    if (refresh) this.refreshToken = refresh;
    clearTimeout(this.timer);
    const wait = Math.max(this.session.expiresAt - Date.now() - RENEW_EARLY_MS, 5_000);
    this.timer = window.setTimeout(() => void this.renew(), wait);
    this.onChange();
  }

  private renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (!this.refreshToken) {
      // Nothing to renew with (the local sign-in, or an issuer that gave no refresh token):
      // once expired the session ends, and the console asks to sign in again.
      if (this.session && this.session.expiresAt <= Date.now()) this.signOut();
      return;
    }
    try {
      await this.exchange({ grant_type: "refresh_token", refresh_token: this.refreshToken });
    } catch {
      this.signOut();
    }
  }

  private async discover(): Promise<Discovery> {
    if (!this.discovery) {
      const res = await fetch(this.config.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
      if (!res.ok) throw new Error(`The identity provider's discovery document answered ${res.status}.`);
      this.discovery = (await res.json()) as Discovery;
    }
    return this.discovery;
  }

  private async exchange(params: Record<string, string>): Promise<void> {
    const d = await this.discover();
    const res = await fetch(d.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.config.client_id, ...params }).toString(),
    });
    if (!res.ok) throw new Error(`The identity provider refused the sign-in (${res.status}).`);
    const t = (await res.json()) as TokenResponse;
    this.accept(t.access_token, t.refresh_token);
  }
}
