// Screen 5, Reports (seed 000): the Portal Activation Code report (search,
// date range) and the Unused Activation Codes report (with each code's
// stored email), a page at a time, and each whole report as a CSV file.

import { LitElement, html, nothing } from "lit";
import { Api, enc, withQuery } from "./api.js";
import { Session } from "./auth.js";
import { formatDate } from "./format.js";
import { problemMessage } from "./portlet.js";

type Kind = "activations" | "unused-codes";
interface Row {
  contact_id: string;
  contact_name: string;
  email?: string;
  portal_id: string;
  method?: string;
  code?: string | null;
  sent_at?: string | null;
  activated_at?: string;
  created_at?: string;
  expires_at?: string;
  email_document_id: string | null;
  /** The channels the code or link went by (email, sms); empty: never sent. */
  sent_by: ("email" | "sms")[];
}

/** "Email + text", "Text", …: how a code or link went out. */
function sentBy(r: Row): string {
  return r.sent_by.map((c) => (c === "sms" ? "Text" : "Email")).join(" + ");
}

/** A date input's day as the report's RFC 3339 bound: the day's start, or its end. */
export function dayBound(day: string, end: boolean): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  // The day as the staff member's clock has it (the front desk's day, not UTC's), sent as UTC.
  const at = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), end ? 23 : 0, end ? 59 : 0, end ? 59 : 0);
  return at.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class ReportsScreen extends LitElement {
  static properties = {
    session: { attribute: false },
    kind: { state: true },
    rows: { state: true },
    next: { state: true },
    error: { state: true },
    download: { state: true },
    doc: { state: true },
  };
  api!: Api;
  session: Session | null = null;
  kind: Kind = "activations";
  rows: Row[] | null = null;
  next: string | null = null;
  error = "";
  download: { url: string; name: string; rows: number } | null = null;
  doc: { subject: string | null; text: string | null; document_id: string } | null = null;
  private query: Record<string, string | undefined> = {};
  private cursors: (string | null)[] = [null];

  createRenderRoot() {
    return this;
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private switchTo(kind: Kind): void {
    this.kind = kind;
    this.query = {};
    this.cursors = [null];
    this.rows = null;
    this.clearDownload();
    void this.load();
  }

  private search(e: Event): void {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const get = (k: string) => String(data.get(k) ?? "").trim();
    this.query =
      this.kind === "activations"
        ? { q: get("q") || undefined, from: dayBound(get("from"), false), to: dayBound(get("to"), true) }
        : { older_than: dayBound(get("older_than"), false) };
    this.cursors = [null];
    this.clearDownload();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const page = await this.api.get<{ items: Row[]; next_cursor: string | null }>(
        withQuery(`/v1/reports/${this.kind}`, { ...this.query, limit: 50, cursor: this.cursors[this.cursors.length - 1] }),
      );
      this.rows = page.items;
      this.next = page.next_cursor;
      this.error = "";
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  private clearDownload(): void {
    if (this.download) URL.revokeObjectURL(this.download.url);
    this.download = null;
  }

  /** The whole report (this search) as CSV, saved through a link the browser downloads. */
  private async csv(): Promise<void> {
    try {
      const text = await this.api.text(withQuery(`/v1/reports/${this.kind}`, { ...this.query, format: "csv" }));
      this.clearDownload();
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      this.download = { url, name: `${this.kind}.csv`, rows: Math.max(text.trim().split("\n").length - 1, 0) };
      await this.updateComplete;
      this.querySelector<HTMLAnchorElement>("a.download")?.click();
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  private async open(id: string): Promise<void> {
    try {
      this.doc = await this.api.get(`/v1/emails/${enc(id)}`);
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  render() {
    const a = this.kind === "activations";
    return html`
      <h1 tabindex="-1">Reports</h1>
      <div class="tabs" role="group" aria-label="Report">
        <button class=${a ? "" : "secondary"} aria-pressed=${a ? "true" : "false"} @click=${() => this.switchTo("activations")}>Portal Activation Code report</button>
        <button class=${a ? "secondary" : ""} aria-pressed=${a ? "false" : "true"} @click=${() => this.switchTo("unused-codes")}>Unused Activation Codes report</button>
      </div>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <form class="filters" role="search" aria-label="Filter the report" @submit=${this.search}>
        ${a
          ? html`<label>Name or email <input type="search" name="q" maxlength="100"></label>
              <label>Activated from <input type="date" name="from"></label>
              <label>to <input type="date" name="to"></label>`
          : html`<label>Created before <input type="date" name="older_than"></label>`}
        <button type="submit">Search</button>
        <button type="button" class="secondary" @click=${() => this.csv()}>Download CSV</button>
      </form>
      ${this.download
        ? html`<p role="status">CSV ready: <a class="download" href=${this.download.url} download=${this.download.name}>${this.download.name}</a> (${this.download.rows} rows)</p>`
        : nothing}
      <div class="table-wrap"><table id="report" data-kind=${this.kind}>
        <thead><tr>${a
          ? html`<th scope="col">Contact</th><th scope="col">Email</th><th scope="col">Method</th><th scope="col">Sent</th><th scope="col">By</th><th scope="col">Activated</th>`
          : html`<th scope="col">Contact</th><th scope="col">Code</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Sent by</th><th scope="col">Stored message</th>`}</tr></thead>
        <tbody>${(this.rows ?? []).map((r) =>
          a
            ? html`<tr><td><a href="#/contacts/${enc(r.contact_id)}">${r.contact_name}</a></td><td>${r.email}</td><td>${r.method}</td><td>${formatDate(r.sent_at)}</td><td>${sentBy(r)}</td><td>${formatDate(r.activated_at)}</td></tr>`
            : html`<tr><td><a href="#/contacts/${enc(r.contact_id)}">${r.contact_name}</a></td><td><code>${r.code ?? "link"}</code></td>
                <td>${formatDate(r.created_at)}</td><td>${formatDate(r.expires_at)}</td><td>${sentBy(r) || html`<span class="muted">not sent</span>`}</td>
                <td>${r.email_document_id ? html`<button class="link" @click=${() => this.open(r.email_document_id!)}>${r.email_document_id}</button>` : html`<span class="muted">not emailed</span>`}</td></tr>`,
        )}</tbody>
      </table>
      ${this.rows && this.rows.length === 0 ? html`<p>Nothing to report.</p>` : nothing}</div>
      <nav class="pager" aria-label="Pages of the report">
        <button ?disabled=${this.cursors.length <= 1} @click=${() => { this.cursors = this.cursors.slice(0, -1); void this.load(); }}>Previous page</button>
        <button ?disabled=${!this.next} @click=${() => { this.cursors = [...this.cursors, this.next]; void this.load(); }}>Next page</button>
      </nav>
      ${this.doc
        ? html`<section class="panel document" aria-labelledby="rd-h"><h2 id="rd-h">${this.doc.subject ?? "Stored email"}</h2>
            <p class="muted">${this.doc.document_id}</p><pre>${this.doc.text ?? ""}</pre>
            <button class="secondary" @click=${() => (this.doc = null)}>Close document</button></section>`
        : nothing}
    `;
  }
}
customElements.define("pa-reports", ReportsScreen);
