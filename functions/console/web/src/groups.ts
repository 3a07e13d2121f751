// Screen 3, Groups & lists (seed 002): the tenant's SmartGroups and Lists,
// created and edited here, each with "Activate Portal" — a one-time action
// that a progress bar follows to done.

import { LitElement, html, nothing } from "lit";
import { keyed } from "lit/directives/keyed.js";
import { Api, Submission, enc, withQuery } from "./api.js";
import { can, Session } from "./auth.js";
import { formatDate } from "./format.js";
import { problemMessage } from "./portlet.js";
import { field, fieldErrors, PortalSummary } from "./contacts.js";
import "./job.js";

interface GroupRow {
  group_id: string;
  name: string;
  size: number;
  updated_at: string;
}
interface Group extends GroupRow {
  contact_ids: string[];
}

export class GroupsScreen extends LitElement {
  static properties = {
    session: { attribute: false },
    rows: { state: true },
    next: { state: true },
    editing: { state: true },
    error: { state: true },
    saved: { state: true },
    formErrors: { state: true },
    jobs: { state: true },
    portals: { state: true },
    busy: { state: true },
  };
  api!: Api;
  session: Session | null = null;
  rows: GroupRow[] = [];
  next: string | null = null;
  editing: Group | null = null;
  error = "";
  saved = "";
  formErrors: Record<string, string> = {};
  jobs: Record<string, string> = {};
  portals: PortalSummary[] = [];
  /** The groups whose Activate Portal is under way (a second click waits for the first). */
  busy = new Set<string>();
  private readonly submissions = new Map<string, Submission>();
  private request = 0;
  private cursors: (string | null)[] = [null];

  createRenderRoot() {
    return this;
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.load();
    void this.api.get<{ items: PortalSummary[] }>("/v1/portals").then(
      (p) => (this.portals = p.items),
      (e) => (this.error = problemMessage(e)),
    );
  }

  private async load(): Promise<void> {
    const request = ++this.request;
    try {
      const page = await this.api.get<{ items: GroupRow[]; next_cursor: string | null }>(
        withQuery("/v1/groups", { limit: 50, cursor: this.cursors[this.cursors.length - 1] }),
      );
      if (request !== this.request) return;
      this.rows = page.items;
      this.next = page.next_cursor;
      this.error = "";
    } catch (e) {
      if (request === this.request) this.error = problemMessage(e);
    }
  }

  private async edit(id: string | null): Promise<void> {
    this.saved = "";
    this.formErrors = {};
    if (id === null) {
      this.editing = { group_id: "", name: "", size: 0, updated_at: "", contact_ids: [] };
    } else {
      try {
        this.editing = await this.api.get<Group>(`/v1/groups/${enc(id)}`);
      } catch (e) {
        this.error = problemMessage(e);
        return;
      }
    }
    await this.updateComplete;
    this.querySelector<HTMLInputElement>("#group-form input[name=name]")?.focus();
  }

  private async save(e: Event): Promise<void> {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const id = this.editing?.group_id || String(data.get("group_id") ?? "").trim() || `g-${crypto.randomUUID().slice(0, 18)}`;
    const contact_ids = String(data.get("contact_ids") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean);
    try {
      await this.api.put(`/v1/groups/${enc(id)}`, { name: String(data.get("name") ?? "").trim(), contact_ids });
      this.saved = `Saved ${contact_ids.length} members.`;
      this.formErrors = {};
      this.editing = await this.api.get<Group>(`/v1/groups/${enc(id)}`);
      await this.load();
    } catch (err) {
      this.formErrors = fieldErrors(err);
      this.error = problemMessage(err);
    }
  }

  private async activate(id: string, e: Event): Promise<void> {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const body = {
      portal_id: String(data.get("portal") ?? "") || undefined,
      method: data.get("method") === "link" ? "link" : "code",
      send_email: true,
    };
    let submission = this.submissions.get(id);
    if (!submission) this.submissions.set(id, (submission = new Submission()));
    this.busy = new Set(this.busy).add(id);
    try {
      const job = await submission.run((key) => this.api.post<{ job_id: string }>(`/v1/groups/${enc(id)}/activate`, body, key));
      if (!job) return;
      this.jobs = { ...this.jobs, [id]: job.job_id };
      this.error = "";
    } catch (err) {
      this.error = problemMessage(err);
    } finally {
      const busy = new Set(this.busy);
      busy.delete(id);
      this.busy = busy;
    }
  }

  render() {
    const write = can(this.session, "write");
    return html`
      <h1 tabindex="-1">Groups &amp; lists</h1>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <p class="muted">Activate Portal is a one-time action: it gives access to the group's members with an email address today, skips those without one or already active, and is not applied to members added later.</p>
      ${write ? html`<p><button @click=${() => this.edit(null)}>New group</button></p>` : nothing}
      <div class="table-wrap"><table id="groups">
        <thead><tr><th scope="col">Group</th><th scope="col">Members</th><th scope="col">Changed</th>${write ? html`<th scope="col">Activate Portal</th>` : nothing}</tr></thead>
        <tbody>${this.rows.map(
          (g) => html`<tr data-group=${g.group_id}>
            <td><button class="link" @click=${() => this.edit(g.group_id)}>${g.name}</button></td>
            <td>${g.size}</td><td>${formatDate(g.updated_at)}</td>
            ${write
              ? html`<td>
                  <form class="inline-form" @submit=${(e: Event) => this.activate(g.group_id, e)} aria-label="Activate Portal for ${g.name}">
                    ${this.portals.length > 1
                      ? html`<select name="portal" aria-label="Portal for ${g.name}">
                          ${this.portals.map((p) => html`<option value=${p.portal_id} ?selected=${p.default}>${p.name}</option>`)}
                        </select>`
                      : nothing}
                    <select name="method" aria-label="Send to ${g.name}"><option value="code">Pickup code</option><option value="link">Activation link</option></select>
                    <button type="submit" aria-describedby="g-note" ?disabled=${this.busy.has(g.group_id)}>Activate Portal</button>
                  </form>
                  ${this.jobs[g.group_id] ? html`<pa-job-progress .api=${this.api} job-id=${this.jobs[g.group_id]}></pa-job-progress>` : nothing}
                </td>`
              : nothing}
          </tr>`,
        )}</tbody>
      </table>
      ${this.rows.length === 0 ? html`<p>No groups yet.</p>` : nothing}</div>
      <span id="g-note" class="visually-hidden">A one-time action for today's members.</span>
      <nav class="pager" aria-label="Pages of groups">
        <button ?disabled=${this.cursors.length <= 1} @click=${() => { this.cursors = this.cursors.slice(0, -1); void this.load(); }}>Previous page</button>
        <button ?disabled=${!this.next} @click=${() => { this.cursors = [...this.cursors, this.next]; void this.load(); }}>Next page</button>
      </nav>
      ${this.editing
        ? // A form per group: what was typed for one group never shows in another's.
          keyed(this.editing.group_id || "new", this.form(this.editing, write))
        : nothing}
    `;
  }

  private form(g: Group, write: boolean) {
    return html`<section class="panel" aria-labelledby="gf-h">
      <h2 id="gf-h">${g.group_id ? `Group ${g.name}` : "New group"}</h2>
      <form id="group-form" class="stack" @submit=${this.save}>
        <fieldset ?disabled=${!write}>
          ${field("name", "Name", "text", this.formErrors, true, g.name)}
          ${g.group_id ? nothing : field("group_id", "Group id (optional)", "text", this.formErrors)}
          <label>Members (contact ids, one per line)
            <textarea name="contact_ids" rows="8" .value=${g.contact_ids.join("\n")}
              aria-invalid=${this.formErrors.contact_ids ? "true" : "false"}></textarea>
            ${this.formErrors.contact_ids ? html`<span class="field-error">${this.formErrors.contact_ids}</span>` : nothing}
          </label>
          ${write ? html`<button type="submit">Save group</button>` : nothing}
        </fieldset>
        <p role="status">${this.saved}</p>
      </form>
    </section>`;
  }
}
customElements.define("pa-groups", GroupsScreen);
