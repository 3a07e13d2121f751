// Screen 1, Contacts (seed 002): the listing with a green check mark on
// portal-active contacts and a badge for the other states; filters by portal
// and state, name search, paging; check boxes → "Activate Portal" → a
// progress bar that follows the job. New contacts are added here too.

import { LitElement, html, nothing } from "lit";
import { Api, ApiProblem, Submission, enc, withQuery } from "./api.js";
import { can, Session } from "./auth.js";
import { stateLabel } from "./format.js";
import { problemMessage } from "./portlet.js";
import "./job.js";

interface Row {
  contact_id: string;
  name: string;
  email: string | null;
  portal_status: string;
  /** The email bounced hard or was complained about: nothing is sent there. */
  email_problem: "bounced" | "complained" | null;
}
interface Listing {
  portal_id: string;
  items: Row[];
  next_cursor: string | null;
}
export interface PortalSummary {
  portal_id: string;
  name: string;
  default: boolean;
}

const STATES = ["none", "pending", "expired", "active", "disabled", "locked"];
const PAGE = 50;

export class ContactsScreen extends LitElement {
  static properties = {
    session: { attribute: false },
    portals: { state: true },
    listing: { state: true },
    selected: { state: true },
    error: { state: true },
    jobId: { state: true },
    adding: { state: true },
    formErrors: { state: true },
    busy: { state: true },
    loading: { state: true },
  };
  api!: Api;
  session: Session | null = null;
  portals: PortalSummary[] = [];
  listing: Listing | null = null;
  selected = new Set<string>();
  error = "";
  jobId = "";
  adding = false;
  formErrors: Record<string, string> = {};
  busy = false;
  loading = false;
  private readonly submission = new Submission();
  /** Answers to older listing requests are dropped: only the newest request's page is shown. */
  private request = 0;
  private portalId = "";
  private state = "";
  private q = "";
  private problemsOnly = false;
  private cursors: (string | null)[] = [null];

  createRenderRoot() {
    return this;
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.start();
  }

  private async start(): Promise<void> {
    try {
      const portals = await this.api.get<{ items: PortalSummary[] }>("/v1/portals");
      this.portals = portals.items;
      this.portalId = (portals.items.find((p) => p.default) ?? portals.items[0])?.portal_id ?? "";
    } catch (e) {
      this.error = problemMessage(e);
    }
    await this.load();
  }

  private async load(): Promise<void> {
    const cursor = this.cursors[this.cursors.length - 1];
    const request = ++this.request;
    this.loading = true;
    try {
      const listing = await this.api.get<Listing>(
        withQuery("/v1/contacts", {
          portal_id: this.portalId,
          portal_status: this.state,
          email_problem: this.problemsOnly ? "any" : undefined,
          q: this.q,
          limit: PAGE,
          cursor,
        }),
      );
      if (request !== this.request) return;
      this.listing = listing;
      this.error = "";
    } catch (e) {
      if (request === this.request) this.error = problemMessage(e);
    } finally {
      if (request === this.request) this.loading = false;
    }
  }

  private filter(e: Event): void {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const data = new FormData(form);
    this.portalId = String(data.get("portal") ?? "");
    this.state = String(data.get("state") ?? "");
    this.q = String(data.get("q") ?? "").trim();
    this.problemsOnly = data.get("problems") === "on";
    this.cursors = [null];
    this.selected = new Set();
    void this.load();
  }

  private page(delta: 1 | -1): void {
    if (this.loading) return;
    if (delta === 1 && this.listing?.next_cursor) this.cursors = [...this.cursors, this.listing.next_cursor];
    if (delta === -1 && this.cursors.length > 1) this.cursors = this.cursors.slice(0, -1);
    void this.load();
    this.renderRoot.querySelector<HTMLElement>("#contacts-table")?.focus();
  }

  private toggle(id: string, on: boolean): void {
    const next = new Set(this.selected);
    if (on) next.add(id);
    else next.delete(id);
    this.selected = next;
  }

  private toggleAll(on: boolean): void {
    this.selected = on ? new Set(this.listing?.items.map((r) => r.contact_id)) : new Set();
  }

  private async activate(e: Event): Promise<void> {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const body = {
      contact_ids: [...this.selected],
      portal_id: this.portalId || undefined,
      method: data.get("method") === "link" ? "link" : "code",
      send_email: data.get("send_email") === "on",
    };
    this.busy = true;
    try {
      const job = await this.submission.run((key) => this.api.post<{ job_id: string; total: number }>("/v1/activations", body, key));
      if (!job) return;
      this.jobId = job.job_id;
      this.selected = new Set();
      this.error = "";
    } catch (e) {
      this.error = problemMessage(e);
    } finally {
      this.busy = this.submission.busy;
    }
  }

  private async addContact(e: Event): Promise<void> {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const id = String(data.get("contact_id") ?? "").trim() || `c-${crypto.randomUUID().slice(0, 18)}`;
    const body = { name: String(data.get("name") ?? "").trim(), email: String(data.get("email") ?? "").trim() || null, kind: String(data.get("kind")) };
    try {
      await this.api.put(`/v1/contacts/${enc(id)}`, body);
      location.hash = `#/contacts/${enc(id)}`;
    } catch (e) {
      this.formErrors = fieldErrors(e);
      this.error = problemMessage(e);
    }
  }

  render() {
    const write = can(this.session, "write");
    const rows = this.listing?.items ?? [];
    const allOn = rows.length > 0 && rows.every((r) => this.selected.has(r.contact_id));
    return html`
      <h1 tabindex="-1">Contacts</h1>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <form class="filters" @submit=${this.filter} role="search" aria-label="Filter contacts">
        <label>Portal <select name="portal">
          ${this.portals.map((p) => html`<option value=${p.portal_id} ?selected=${p.portal_id === this.portalId}>${p.name}</option>`)}
        </select></label>
        <label>State <select name="state">
          <option value="">Any state</option>
          ${STATES.map((s) => html`<option value=${s} ?selected=${s === this.state}>${stateLabel(s)}</option>`)}
        </select></label>
        <label>Name or email <input type="search" name="q" maxlength="100" .value=${this.q} autocomplete="off"></label>
        <label class="inline"><input type="checkbox" name="problems" ?checked=${this.problemsOnly}> Email problems only</label>
        <button type="submit">Search</button>
      </form>

      ${write && this.selected.size
        ? html`<form class="bar" @submit=${this.activate} aria-label="Activate Portal for the selected contacts">
            <strong>${this.selected.size} selected</strong>
            <fieldset><legend>Send</legend>
              <label><input type="radio" name="method" value="code" checked> Pickup code</label>
              <label><input type="radio" name="method" value="link"> Activation link</label>
            </fieldset>
            <label class="inline"><input type="checkbox" name="send_email" checked> Email it</label>
            <button type="submit" ?disabled=${this.busy} aria-busy=${this.busy ? "true" : "false"}>Activate Portal</button>
          </form>`
        : nothing}
      ${this.jobId ? html`<pa-job-progress .api=${this.api} job-id=${this.jobId} @job-done=${() => this.load()}></pa-job-progress>` : nothing}

      <div class="table-wrap" id="contacts-table" tabindex="-1">
        <table>
          <caption class="visually-hidden">Contacts and their portal state</caption>
          <thead><tr>
            ${write ? html`<th scope="col"><input type="checkbox" aria-label="Select every contact on this page" .checked=${allOn}
                @change=${(e: Event) => this.toggleAll((e.target as HTMLInputElement).checked)}></th>` : nothing}
            <th scope="col">Name</th><th scope="col">Email</th><th scope="col">Portal</th>
          </tr></thead>
          <tbody>
            ${rows.map(
              (r) => html`<tr data-contact=${r.contact_id}>
                ${write ? html`<td><input type="checkbox" aria-label="Select ${r.name}" .checked=${this.selected.has(r.contact_id)}
                    @change=${(e: Event) => this.toggle(r.contact_id, (e.target as HTMLInputElement).checked)}></td>` : nothing}
                <td><a href="#/contacts/${enc(r.contact_id)}">${r.name}</a></td>
                <td>${r.email ?? html`<span class="muted">no email</span>`}${r.email_problem ? html` ${problemBadge(r.email_problem)}` : nothing}</td>
                <td>${stateCell(r.portal_status)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${this.listing && rows.length === 0 ? html`<p>No contacts match.</p>` : nothing}
      </div>
      <nav class="pager" aria-label="Pages">
        <button ?disabled=${this.loading || this.cursors.length <= 1} @click=${() => this.page(-1)}>Previous page</button>
        <span>Page ${this.cursors.length}</span>
        <button ?disabled=${this.loading || !this.listing?.next_cursor} @click=${() => this.page(1)}>Next page</button>
      </nav>

      ${write
        ? html`<details class="add" ?open=${this.adding} @toggle=${(e: Event) => (this.adding = (e.target as HTMLDetailsElement).open)}>
            <summary>Add a contact</summary>
            <form @submit=${this.addContact}>
              ${field("name", "Name", "text", this.formErrors, true)}
              ${field("email", "Email", "email", this.formErrors)}
              <label>Kind <select name="kind"><option value="individual">Individual</option><option value="organization_contact">Organisation's contact</option></select></label>
              ${field("contact_id", "Contact id (optional; your system's id)", "text", this.formErrors)}
              <button type="submit">Add contact</button>
            </form>
          </details>`
        : nothing}
    `;
  }
}

/** A bounced or complained-about address: nothing is sent there until the email changes. */
export function problemBadge(problem: string) {
  return html`<span class="badge email-problem" title="Nothing is sent to this address until the contact's email changes">${problem === "complained" ? "Complained" : "Bounced"}</span>`;
}

export function stateCell(state: string) {
  if (state === "active") return html`<span class="check" title="Portal active"><span aria-hidden="true">✔</span> Active</span>`;
  if (state === "none") return html`<span class="muted">No access</span>`;
  return html`<span class="badge ${state}">${stateLabel(state)}</span>`;
}

/** Validation errors by field (their JSON pointer without the slash). */
export function fieldErrors(e: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (e instanceof ApiProblem) for (const f of e.errors) out[f.pointer.replace(/^\//, "").split("/")[0]] = f.detail;
  return out;
}

export function field(name: string, label: string, type: string, errors: Record<string, string>, required = false, value = "") {
  const err = errors[name];
  return html`<label>${label}
    <input name=${name} type=${type} ?required=${required} .value=${value} aria-invalid=${err ? "true" : "false"}
      aria-describedby=${err ? `${name}-error` : nothing}>
    ${err ? html`<span class="field-error" id="${name}-error">${err}</span>` : nothing}
  </label>`;
}

customElements.define("pa-contacts", ContactsScreen);
