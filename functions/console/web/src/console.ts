// The staff console: sign-in, then one screen per route of the URL fragment
// (#/contacts, #/contacts/{id}). Screens render into the page (light DOM,
// one stylesheet: console.css); only the portlet keeps a shadow root, as it
// travels into other products' pages.

import { LitElement, html, nothing } from "lit";
import { Api } from "./api.js";
import { Auth, ConsoleConfig, can } from "./auth.js";
import "./contacts.js";
import "./contact.js";
import "./groups.js";
import "./admin.js";
import "./reports.js";

type View = { name: "contacts" } | { name: "contact"; id: string } | { name: "groups" } | { name: "admin" } | { name: "reports" } | { name: "unknown" };

export function route(hash: string): View {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "" || (parts[0] === "contacts" && parts.length === 1)) return { name: "contacts" };
  if (parts[0] === "contacts" && parts[1]) return { name: "contact", id: parts[1] };
  if (parts[0] === "groups" || parts[0] === "admin" || parts[0] === "reports") return { name: parts[0] };
  return { name: "unknown" };
}

export class PortalConsole extends LitElement {
  static properties = { view: { state: true }, ready: { state: true }, error: { state: true } };
  view: View = route(location.hash);
  ready = false;
  error = "";
  auth: Auth | null = null;
  api: Api | null = null;

  createRenderRoot() {
    return this;
  }

  connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("hashchange", () => {
      this.view = route(location.hash);
      // A new screen: its heading is where keyboard and screen-reader users start.
      void this.updateComplete.then(() => this.querySelector<HTMLElement>("main h1")?.focus());
    });
    void this.start();
  }

  private async start(): Promise<void> {
    try {
      const res = await fetch("config.json");
      const config = (await res.json()) as ConsoleConfig;
      this.auth = new Auth(config, () => this.requestUpdate());
      this.api = new Api(() => this.auth!.token());
      await this.auth.resume();
      this.view = route(location.hash);
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    this.ready = true;
  }

  render() {
    const session = this.auth?.session ?? null;
    if (!this.ready) return html`<main><p>Loading…</p></main>`;
    if (!session || !this.api) {
      return html`<main class="signin">
        <h1 tabindex="-1">Portal Access</h1>
        ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
        <p>Staff console: give contacts access to your portal.</p>
        <button @click=${() => this.auth?.signIn()}>Sign in</button>
      </main>`;
    }
    return html`
      <a class="skip" href="#main" @click=${(e: Event) => { e.preventDefault(); this.querySelector<HTMLElement>("main")?.focus(); }}>Skip to content</a>
      <header>
        <strong class="brand">Portal Access</strong>
        <nav aria-label="Console">
          <a href="#/contacts" aria-current=${this.view.name.startsWith("contact") ? "page" : "false"}>Contacts</a>
          <a href="#/groups" aria-current=${this.view.name === "groups" ? "page" : "false"}>Groups &amp; lists</a>
          <a href="#/reports" aria-current=${this.view.name === "reports" ? "page" : "false"}>Reports</a>
          <a href="#/admin" aria-current=${this.view.name === "admin" ? "page" : "false"}>Portal Administration</a>
        </nav>
        <span class="who">${session.subject} · ${session.tenantId} · ${can(session, "admin") ? "admin" : can(session, "write") ? "staff" : "read-only"}</span>
        <button class="secondary" @click=${() => this.auth?.signOut()}>Sign out</button>
      </header>
      <main id="main" tabindex="-1">${this.screen()}</main>
    `;
  }

  private screen() {
    const session = this.auth!.session;
    switch (this.view.name) {
      case "contacts":
        return html`<pa-contacts .api=${this.api} .session=${session}></pa-contacts>`;
      case "contact":
        return html`<pa-contact .api=${this.api} .session=${session} .contactId=${this.view.id}></pa-contact>`;
      case "groups":
        return html`<pa-groups .api=${this.api} .session=${session}></pa-groups>`;
      case "reports":
        return html`<pa-reports .api=${this.api} .session=${session}></pa-reports>`;
      case "admin":
        return html`<pa-admin .api=${this.api} .session=${session}></pa-admin>`;
      default:
        return html`<h1 tabindex="-1">Not found</h1><p><a href="#/contacts">Back to the contacts</a></p>`;
    }
  }
}
customElements.define("portal-console", PortalConsole);
