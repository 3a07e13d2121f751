// <portal-access-portlet contact-id="…">: the Portal portlet of a chart's
// summary dashboard (seed 000), as a web component another product embeds
// with one script tag. Its styles live in its shadow root, so the host's CSS
// neither reaches in nor leaks out.
//
// The host gives it a token: a `tokenProvider` property (a function returning
// the bearer token or a promise of it), or a `token-callback` attribute naming
// such a function on `window`. `api-base` is the API's origin (default: the
// page's own). It dispatches, bubbling and composed:
//   portal-access-code-generated  detail {contact_id, portal_id, code, emailed}
//   portal-access-access-changed  detail {contact_id, portal_id, action, state}
// and hides buttons the token's scope would answer 403 to (`can-write`).

import { LitElement, css, html, nothing } from "lit";
import { Api, ApiProblem, TokenSource, enc } from "./api.js";
import { formatDate, stateLabel } from "./format.js";

export type PortalState = "none" | "pending" | "expired" | "active" | "disabled" | "locked";

export interface PortletView {
  contact_id: string;
  /** `sends_by`: the channels "Generate & Email" would reach the contact by on the portal (empty: none). */
  portals: { portal_id: string; name: string; default: boolean; state: PortalState; sends_by: ("email" | "sms")[] }[];
  accounts: { email: string; portal_id: string; activated_at: string }[];
  pending_codes: { portal_id: string; portal_name: string; code: string; created_at: string; expires_at: string; email_document_id: string | null }[];
  message: string;
  /** The contact's email bounced hard or was complained about: nothing is sent there. */
  email_problem: "bounced" | "complained" | null;
}

type Action = "activate" | "resend" | "deactivate";

/** The state's own action (seed 001: Access-Pending resends, -Expired resets, -Disabled enables). */
export function stateAction(state: PortalState): { action: Action; label: string } {
  switch (state) {
    case "none":
      return { action: "activate", label: "Activate" };
    case "pending":
      return { action: "resend", label: "Resend" };
    case "expired":
    case "locked":
      return { action: "resend", label: "Reset" };
    case "disabled":
      return { action: "resend", label: "Enable" };
    case "active":
      return { action: "deactivate", label: "Deactivate" };
  }
}

const CONFIRM: Record<string, string> = {
  Activate: "Email this contact an invitation to the portal?",
  Resend: "Email the pending invitation again?",
  Reset: "Issue a fresh invitation and email it? The old one stops working.",
  Enable: "Give this contact portal access again and email a new invitation?",
  Deactivate: "End this contact's portal access? Their accounts are disabled and a notice is emailed.",
};

export class PortalAccessPortlet extends LitElement {
  static properties = {
    contactId: { type: String, attribute: "contact-id" },
    apiBase: { type: String, attribute: "api-base" },
    tokenCallback: { type: String, attribute: "token-callback" },
    canWrite: { type: Boolean, attribute: "can-write" },
    view: { state: true },
    busy: { state: true },
    error: { state: true },
    notice: { state: true },
    confirming: { state: true },
  };

  contactId = "";
  apiBase = "";
  tokenCallback = "";
  canWrite = false;
  tokenProvider: TokenSource | null = null;
  view: PortletView | null = null;
  busy = false;
  error = "";
  notice = "";
  confirming: { portal_id: string; action: Action; label: string } | null = null;
  /** The button that opened the confirmation, where focus goes back when it closes. */
  private opener: HTMLElement | null = null;

  static styles = css`
    :host { display: block; font: 15px/1.45 system-ui, sans-serif; color: #1d2733; }
    section { border: 1px solid #c7d0da; border-radius: 8px; padding: 12px 14px; background: #fff; }
    h2 { font-size: 1.05rem; margin: 0 0 8px; }
    h3 { font-size: 0.95rem; margin: 12px 0 4px; }
    ul { list-style: none; padding: 0; margin: 0; }
    li { padding: 4px 0; }
    .portal { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; justify-content: space-between; border-top: 1px solid #e4e9ee; padding: 8px 0; }
    .portal:first-child { border-top: 0; }
    .name { font-weight: 600; }
    .badge { display: inline-block; border-radius: 999px; padding: 1px 8px; font-size: 0.8rem; font-weight: 600; background: #e4e9ee; color: #1d2733; }
    .badge.active { background: #d5f0dc; color: #0b5b22; }
    .badge.pending { background: #fff0c2; color: #5c4400; }
    .badge.expired, .badge.locked { background: #fde0d9; color: #8a1c05; }
    .badge.disabled { background: #e0e0e0; color: #333; }
    .message { margin: 8px 0; }
    .buttons { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; }
    button { font: inherit; min-height: 44px; padding: 6px 14px; border-radius: 6px; border: 1px solid #1a5fb4; background: #1a5fb4; color: #fff; cursor: pointer; }
    button.secondary { background: #fff; color: #1a5fb4; }
    button.danger { background: #a51d2d; border-color: #a51d2d; }
    button:disabled { opacity: 0.6; cursor: progress; }
    button:focus-visible { outline: 3px solid #f5c211; outline-offset: 2px; }
    code { font: 600 0.95rem ui-monospace, monospace; }
    .muted { color: #4b5866; font-size: 0.88rem; }
    [role="alert"] { color: #8a1c05; background: #fde0d9; padding: 6px 10px; border-radius: 6px; }
    [role="status"]:not(:empty) { color: #0b5b22; background: #d5f0dc; padding: 6px 10px; border-radius: 6px; }
    .problem { color: #8a1c05; background: #fde0d9; padding: 6px 10px; border-radius: 6px; }
    .confirm { margin-top: 8px; padding: 10px; border: 2px solid #1a5fb4; border-radius: 8px; }
  `;

  private get api(): Api {
    const source: TokenSource =
      this.tokenProvider ??
      (() => {
        const fn = (window as unknown as Record<string, unknown>)[this.tokenCallback];
        if (typeof fn !== "function") throw new ApiProblem(401, "No token", "The host page gave the portlet no token callback.");
        return (fn as () => Promise<string> | string)();
      });
    return new Api(source, this.apiBase);
  }

  updated(changed: Map<string, unknown>): void {
    if (changed.has("contactId") && this.contactId) void this.load();
    // Keyboard users land on the question, and back on the portlet when it closes.
    if (changed.has("confirming") && this.confirming) this.renderRoot.querySelector<HTMLButtonElement>(".confirm button")?.focus();
  }

  /** Reads the view again; `clear` drops the message of an earlier action (not after an action's own). */
  async load(clear = true): Promise<void> {
    try {
      this.view = await this.api.get<PortletView>(`/v1/contacts/${enc(this.contactId)}/portal`);
      if (clear) this.error = "";
    } catch (e) {
      this.error = message(e);
    }
  }

  private async generate(portal_id: string, send_email: boolean): Promise<void> {
    await this.act(async () => {
      const issued = await this.api.post<{ code: string; portal_id: string }>(`/v1/contacts/${enc(this.contactId)}/codes`, { portal_id, send_email });
      this.notice = send_email ? `Code ${issued.code} generated and sent.` : `Code ${issued.code} generated.`;
      this.emit("portal-access-code-generated", { contact_id: this.contactId, portal_id, code: issued.code, emailed: send_email });
    });
  }

  private async confirmAction(): Promise<void> {
    const c = this.confirming;
    if (!c) return;
    this.close();
    await this.act(async () => {
      const done = await this.api.post<{ state: string; action?: string }>(`/v1/contacts/${enc(this.contactId)}/portal/${c.action}`, { portal_id: c.portal_id });
      this.notice = `${c.label}: done. Access is now ${stateLabel(done.state as PortalState).toLowerCase()}.`;
      this.emit("portal-access-access-changed", { contact_id: this.contactId, portal_id: c.portal_id, action: done.action ?? c.action, state: done.state });
    });
  }

  private open(e: Event, c: { portal_id: string; action: Action; label: string }): void {
    this.opener = e.currentTarget as HTMLElement;
    this.confirming = c;
  }

  /** Closes the confirmation and gives focus back to the button that opened it. */
  private close(): void {
    this.confirming = null;
    const opener = this.opener;
    this.opener = null;
    void this.updateComplete.then(() => (opener?.isConnected ? opener : this.renderRoot.querySelector<HTMLElement>("h2"))?.focus());
  }

  private async act(run: () => Promise<void>): Promise<void> {
    // One action at a time: a second click while the first is under way does nothing.
    if (this.busy) return;
    this.busy = true;
    this.error = "";
    this.notice = "";
    try {
      await run();
    } catch (e) {
      this.error = message(e);
    } finally {
      this.busy = false;
      await this.load(false);
    }
  }

  private emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  render() {
    const v = this.view;
    return html`<section aria-labelledby="t" aria-busy=${this.busy ? "true" : "false"}>
      <h2 id="t" tabindex="-1">Portal</h2>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <p role="status">${this.notice}</p>
      ${v ? this.body(v) : this.error ? nothing : html`<p class="muted">Loading…</p>`}
    </section>`;
  }

  private body(v: PortletView) {
    return html`
      <ul aria-label="Portals">
        ${v.portals.map((p) => this.portal(p))}
      </ul>
      <p class="message">${v.message}</p>
      ${v.email_problem
        ? html`<p class="problem" role="note">${v.email_problem === "complained" ? "This contact marked an email from you as spam" : "This contact's email address bounced"}:
            nothing is emailed there until the contact's email changes.</p>`
        : nothing}
      ${v.accounts.length
        ? html`<ul aria-label="Accounts">
            ${v.accounts.map((a) => html`<li><strong>${a.email}</strong> <span class="muted">since ${formatDate(a.activated_at)}</span></li>`)}
          </ul>`
        : nothing}
      <h3>Activation / Created On</h3>
      ${v.pending_codes.length
        ? html`<ul aria-label="Pending codes">
            ${v.pending_codes.map(
              (c) => html`<li>${c.portal_name} (<code>${c.code}</code>) <span class="muted">${formatDate(c.created_at)} · expires ${formatDate(c.expires_at)}</span></li>`,
            )}
          </ul>`
        : html`<p class="muted">No pending codes.</p>`}
      ${this.confirming ? this.confirmBox(this.confirming) : nothing}
    `;
  }

  private portal(p: PortletView["portals"][number]) {
    const s = stateAction(p.state);
    const deactivatable = p.state === "pending" || p.state === "expired" || p.state === "locked";
    return html`<li class="portal">
      <span><span class="name" id="portal-${p.portal_id}">${p.name}</span>${p.default ? html` <span class="muted">(default)</span>` : nothing}
        <span class="badge ${p.state}">${stateLabel(p.state)}</span></span>
      ${this.canWrite
        ? html`<span class="buttons">
            <button ?disabled=${this.busy} @click=${() => this.generate(p.portal_id, false)} aria-describedby="portal-${p.portal_id}">Generate</button>
            ${p.sends_by.length
              ? html`<button ?disabled=${this.busy} @click=${() => this.generate(p.portal_id, true)} aria-describedby="portal-${p.portal_id}"
                  title=${p.sends_by.length > 1 ? "Emails and texts the code" : nothing}>${p.sends_by.includes("email") ? "Generate & Email" : "Generate & Text"}</button>`
              : nothing}
            <button class=${s.action === "deactivate" ? "danger" : "secondary"} ?disabled=${this.busy}
              aria-describedby="portal-${p.portal_id}" @click=${(e: Event) => this.open(e, { portal_id: p.portal_id, ...s })}>${s.label}</button>
            ${deactivatable
              ? html`<button class="danger" ?disabled=${this.busy} aria-describedby="portal-${p.portal_id}"
                  @click=${(e: Event) => this.open(e, { portal_id: p.portal_id, action: "deactivate", label: "Deactivate" })}>Deactivate</button>`
              : nothing}
          </span>`
        : nothing}
    </li>`;
  }

  private confirmBox(c: { label: string }) {
    return html`<div class="confirm" role="alertdialog" aria-labelledby="cq" aria-modal="false"
      @keydown=${(e: KeyboardEvent) => e.key === "Escape" && this.close()}>
      <p id="cq">${CONFIRM[c.label]}</p>
      <div class="buttons">
        <button class=${c.label === "Deactivate" ? "danger" : ""} @click=${() => this.confirmAction()}>Yes, ${c.label.toLowerCase()}</button>
        <button class="secondary" @click=${() => this.close()}>Cancel</button>
      </div>
    </div>`;
  }
}

function message(e: unknown): string {
  if (e instanceof ApiProblem) return e.errors.length ? `${e.message} ${e.errors.map((f) => f.detail).join(" ")}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export { message as problemMessage };

if (!customElements.get("portal-access-portlet")) customElements.define("portal-access-portlet", PortalAccessPortlet);
