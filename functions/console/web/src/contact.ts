// Screen 2, the contact record: the Portal portlet (seed 000) with the
// state's action, the Email/Text Log with each email's status and stored
// document, the audit trail, and the contact's details and facts of the record.

import { LitElement, html, nothing } from "lit";
import { Api, enc } from "./api.js";
import { can, Session } from "./auth.js";
import { formatDate } from "./format.js";
import { problemMessage } from "./portlet.js";
import { field, fieldErrors } from "./contacts.js";
import "./portlet.js";

interface Contact {
  contact_id: string;
  name: string;
  email: string | null;
  /** E.164, for text messages. */
  phone: string | null;
  /** BCP 47; null: the portal's default language. */
  locale: string | null;
  kind: string;
  portal_ids: string[];
  identity_facts: string[];
}
interface EmailEntry {
  document_id: string;
  kind: string;
  /** An email address, or for a text a phone number. */
  to: string;
  channel: "email" | "sms";
  /** After `sent`: the language of the template it went with. */
  locale: string | null;
  subject: string | null;
  status: string;
  failure_reason: string | null;
  created_at: string;
  sent_at: string | null;
  /** After `sent`: the furthest of SES's delivery events (delivered, bounced, complained, delivery_delayed). */
  delivery_status: string | null;
  delivery_events: { status: string; at: string; bounce?: string; diagnostic?: string }[];
}
interface EmailDocument extends EmailEntry {
  text: string | null;
  html: string | null;
}
interface AuditEntry {
  actor: string;
  action: string;
  portal_id: string | null;
  at: string;
  detail: Record<string, string>;
}

const FACTS: [string, string, string][] = [
  ["date_of_birth", "Date of birth", "date"],
  ["family_name", "Family name", "text"],
  ["postal_code", "Postal code", "text"],
];

export class ContactScreen extends LitElement {
  static properties = {
    contactId: { type: String },
    session: { attribute: false },
    contact: { state: true },
    emails: { state: true },
    audit: { state: true },
    doc: { state: true },
    error: { state: true },
    saved: { state: true },
    formErrors: { state: true },
  };
  api!: Api;
  contactId = "";
  session: Session | null = null;
  contact: Contact | null = null;
  emails: EmailEntry[] = [];
  audit: AuditEntry[] = [];
  doc: EmailDocument | null = null;
  error = "";
  saved = "";
  formErrors: Record<string, string> = {};

  createRenderRoot() {
    return this;
  }

  updated(changed: Map<string, unknown>): void {
    if (changed.has("contactId") && this.contactId) void this.load();
  }

  private async load(): Promise<void> {
    const id = enc(this.contactId);
    try {
      const [contact, emails, audit] = await Promise.all([
        this.api.get<Contact>(`/v1/contacts/${id}`),
        this.api.get<{ items: EmailEntry[] }>(`/v1/contacts/${id}/emails`),
        this.api.get<{ items: AuditEntry[] }>(`/v1/contacts/${id}/audit`),
      ]);
      this.contact = contact;
      this.emails = emails.items;
      this.audit = audit.items;
      this.error = "";
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  /** The portlet changed something: the log and the trail have news; emails are sent a moment later. */
  private changed(): void {
    void this.load();
    window.setTimeout(() => void this.load(), 2500);
  }

  private async open(documentId: string): Promise<void> {
    try {
      this.doc = await this.api.get<EmailDocument>(`/v1/emails/${enc(documentId)}`);
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>("#document h3")?.focus();
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  private async save(e: Event): Promise<void> {
    e.preventDefault();
    const c = this.contact;
    if (!c) return;
    const data = new FormData(e.target as HTMLFormElement);
    const body: Record<string, unknown> = {
      name: String(data.get("name") ?? "").trim(),
      email: String(data.get("email") ?? "").trim() || null,
      phone: String(data.get("phone") ?? "").trim() || null,
      locale: String(data.get("locale") ?? "").trim() || null,
      kind: String(data.get("kind")),
      portal_ids: c.portal_ids,
    };
    // Facts are write-only: an empty field keeps what is on record, the box erases it.
    for (const [name] of FACTS) {
      const v = String(data.get(name) ?? "").trim();
      if (data.get(`erase_${name}`) === "on") body[name] = null;
      else if (v) body[name] = v;
    }
    try {
      await this.api.put(`/v1/contacts/${enc(c.contact_id)}`, body);
      this.formErrors = {};
      this.saved = "Saved.";
      await this.load();
    } catch (err) {
      this.saved = "";
      this.formErrors = fieldErrors(err);
      this.error = problemMessage(err);
    }
  }

  render() {
    const c = this.contact;
    const write = can(this.session, "write");
    return html`
      <p><a href="#/contacts">← Contacts</a></p>
      <h1 tabindex="-1">${c?.name ?? "Contact"}</h1>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <div class="record">
        <portal-access-portlet contact-id=${this.contactId} ?can-write=${write}
          .tokenProvider=${() => this.api.token()}
          @portal-access-code-generated=${this.changed} @portal-access-access-changed=${this.changed}></portal-access-portlet>

        <section aria-labelledby="log-h">
          <h2 id="log-h">Email/Text Log</h2>
          <button class="secondary" id="refresh-log" @click=${() => this.load()}>Refresh</button>
          ${this.emails.length
            ? html`<div class="table-wrap"><table id="email-log">
                <thead><tr><th scope="col">Sent</th><th scope="col">Kind</th><th scope="col">By</th><th scope="col">To</th><th scope="col">Status</th><th scope="col">Document</th></tr></thead>
                <tbody>${this.emails.map(
                  (m) => html`<tr data-kind=${m.kind} data-status=${m.status} data-channel=${m.channel}>
                    <td>${formatDate(m.sent_at ?? m.created_at)}</td><td>${m.subject ?? kindLabel(m.kind)}</td>
                    <td><span class="badge channel-${m.channel}">${m.channel === "sms" ? "Text" : "Email"}</span>${m.locale ? html` <span class="muted" lang=${m.locale}>${m.locale}</span>` : nothing}</td><td>${m.to}</td>
                    <td data-delivery=${m.delivery_status ?? ""}><span class="badge email-${m.delivery_status ?? m.status}">${deliveryLabel(m)}</span>${m.failure_reason ? html` <span class="muted">${m.failure_reason}</span>` : nothing}
                      ${lastDiagnostic(m) ? html` <span class="muted">${lastDiagnostic(m)}</span>` : nothing}</td>
                    <td><button class="link" @click=${() => this.open(m.document_id)} aria-label="Open document ${m.document_id}">${m.document_id}</button></td>
                  </tr>`,
                )}</tbody></table></div>`
            : html`<p class="muted">No emails or texts yet.</p>`}
          ${this.doc
            ? html`<div id="document" class="document">
                <h3 tabindex="-1">${this.doc.subject ?? `Text: ${kindLabel(this.doc.kind)}`}</h3>
                <p class="muted">To ${this.doc.to} · ${this.doc.status} · ${this.doc.document_id}</p>
                ${this.doc.text ? html`<pre>${this.doc.text}</pre>` : html`<p class="muted">Not rendered yet.</p>`}
                <button class="secondary" @click=${() => (this.doc = null)}>Close document</button>
              </div>`
            : nothing}
        </section>

        <section aria-labelledby="audit-h">
          <h2 id="audit-h">Audit trail</h2>
          ${this.audit.length
            ? html`<ol class="audit">${this.audit.map(
                (a) => html`<li><strong>${a.action}</strong> by ${a.actor} <span class="muted">${formatDate(a.at)}${a.portal_id ? ` · ${a.portal_id}` : ""}</span></li>`,
              )}</ol>`
            : html`<p class="muted">Nothing recorded yet.</p>`}
        </section>

        ${c
          ? html`<section aria-labelledby="edit-h">
              <h2 id="edit-h">Details</h2>
              <form @submit=${this.save} class="stack">
                <fieldset ?disabled=${!write}>
                  ${field("name", "Name", "text", this.formErrors, true, c.name)}
                  ${field("email", "Email", "email", this.formErrors, false, c.email ?? "")}
                  ${field("phone", "Mobile phone (for texts, +14155550123)", "tel", this.formErrors, false, c.phone ?? "")}
                  ${field("locale", "Language (en, es, es-MX; empty: the portal's)", "text", this.formErrors, false, c.locale ?? "")}
                  <label>Kind <select name="kind">
                    <option value="individual" ?selected=${c.kind === "individual"}>Individual</option>
                    <option value="organization_contact" ?selected=${c.kind === "organization_contact"}>Organisation's contact</option>
                  </select></label>
                  <p class="muted">Facts of the record are never shown back; on record: ${c.identity_facts.length ? c.identity_facts.join(", ").replace(/_/g, " ") : "none"}.</p>
                  ${FACTS.map(
                    ([name, label, type]) => html`${field(name, label, type, this.formErrors)}
                      ${c.identity_facts.includes(name) ? html`<label class="inline"><input type="checkbox" name="erase_${name}"> Erase ${label.toLowerCase()}</label>` : nothing}`,
                  )}
                  ${write ? html`<button type="submit">Save details</button>` : nothing}
                </fieldset>
                <p role="status">${this.saved}</p>
              </form>
            </section>`
          : nothing}
      </div>
    `;
  }
}
customElements.define("pa-contact", ContactScreen);

/** A kind as staff read it: `pickup_code` → "pickup code". */
function kindLabel(kind: string): string {
  return kind.replace(/_/g, " ");
}

/** What staff read for an email: its send status, or once SES reported, what became of it. */
export function deliveryLabel(m: EmailEntry): string {
  switch (m.delivery_status) {
    case "delivered":
      return "delivered";
    case "bounced":
      return m.delivery_events.some((e) => e.status === "bounced" && e.bounce === "hard") ? "bounced" : "bounced (soft)";
    case "complained":
      return "complained";
    case "delivery_delayed":
      return "delayed";
    default:
      return m.status;
  }
}

function lastDiagnostic(m: EmailEntry): string {
  const bad = [...m.delivery_events].reverse().find((e) => e.status !== "delivered" && e.diagnostic);
  return bad?.diagnostic ?? "";
}
