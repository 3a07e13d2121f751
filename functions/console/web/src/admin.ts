// Screen 4, Portal Administration (seed 002): the tenant's profile (its
// name on the claim pages and in emails), its sending quota, its portals and
// their settings, and each portal's email templates with an editor, a live
// preview, and validation errors shown at their line.

import { LitElement, html, nothing } from "lit";
import { keyed } from "lit/directives/keyed.js";
import { Api, ApiProblem, enc } from "./api.js";
import { can, Session } from "./auth.js";
import { problemMessage } from "./portlet.js";
import { field, fieldErrors } from "./contacts.js";

interface Portal {
  portal_id: string;
  name: string;
  default: boolean;
  claim_url: string | null;
  code_ttl_hours: number;
  link_ttl_hours: number;
  auto_generate: boolean;
  auto_email: boolean;
  reminder_days_before_expiry: number | null;
  claim_checks: string[];
  identity_issuer?: string;
  identity_audience?: string;
  identity_jwks_url?: string;
  /** Per kind, the channels its messages go by; a kind not named: email. */
  channels: Record<string, ("email" | "sms")[]>;
  default_locale: string;
}
interface Profile {
  display_name: string;
  support_email: string | null;
  logo_url: string | null;
  brand_color: string | null;
  is_default: boolean;
}
interface SmsInfo {
  length: number;
  segments: number;
  encoding: "GSM-7" | "UCS-2";
}
interface Template {
  subject: string;
  text: string;
  html: string;
  sms: string;
  source: string;
  /** The locale of the template in force, and those the portal has its own in. */
  locale: string;
  locales: string[];
  default_locale: string;
  variables: string[];
}
interface Preview {
  subject: string;
  text: string;
  html: string;
  sms: SmsInfo & { text: string };
}
interface Quota {
  emails_per_hour: number;
  max_emails_per_hour: number;
  sent_this_hour: number;
  sms_per_hour: number;
  max_sms_per_hour: number;
  sms_sent_this_hour: number;
}
interface TemplateError {
  part: string;
  line: number | null;
  detail: string;
}

export const KINDS: [string, string][] = [
  ["pickup_code", "Pickup code"],
  ["activation_link", "Activation link"],
  ["reminder", "Reminder"],
  ["reactivation", "Reactivation (enable)"],
  ["deactivation", "Deactivation notice"],
  ["claim_confirmation", "Claim confirmation"],
  ["account_added", "Account added"],
];
const FACTS: [string, string][] = [
  ["date_of_birth", "Date of birth"],
  ["family_name", "Family name"],
  ["postal_code", "Postal code"],
];
const PARTS = ["subject", "text", "html", "sms"] as const;
const PART_LABELS: Record<(typeof PARTS)[number], string> = { subject: "Subject", text: "Text version", html: "HTML version", sms: "Text message (SMS)" };
/** Kinds whose messages may also go by text (the claim confirmation proves an email address: email only). */
const SMS_KINDS = KINDS.map(([k]) => k).filter((k) => k !== "claim_confirmation");

/** A template's refusal: which part, which line (`errors[0].line`). */
export function templateError(e: unknown): TemplateError | null {
  if (!(e instanceof ApiProblem) || e.status !== 422) return null;
  const f = e.errors[0];
  return { part: (f?.pointer ?? "").replace(/^\//, "") || "text", line: f?.line ?? null, detail: f?.detail ?? e.message };
}

export class AdminScreen extends LitElement {
  static properties = {
    session: { attribute: false },
    portals: { state: true },
    portal: { state: true },
    profile: { state: true },
    quota: { state: true },
    kind: { state: true },
    locale: { state: true },
    template: { state: true },
    preview: { state: true },
    tplError: { state: true },
    error: { state: true },
    notice: { state: true },
    formErrors: { state: true },
  };
  api!: Api;
  session: Session | null = null;
  portals: Portal[] = [];
  portal: Portal | null = null;
  profile: Profile | null = null;
  quota: Quota | null = null;
  kind = "pickup_code";
  /** The template's locale being edited; empty: the portal's default. */
  locale = "";
  template: Template | null = null;
  preview: Preview | null = null;
  tplError: TemplateError | null = null;
  error = "";
  notice = "";
  formErrors: Record<string, string> = {};
  private timer: number | undefined;
  /** Only the newest template request's answer is shown (a quick change of portal or kind drops older ones). */
  private templateRequest = 0;

  createRenderRoot() {
    return this;
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const [portals, profile, quota] = await Promise.all([
        this.api.get<{ items: Portal[] }>("/v1/portals"),
        this.api.get<Profile>("/v1/tenant/profile"),
        this.api.get<Quota>("/v1/settings"),
      ]);
      this.portals = portals.items;
      this.profile = profile;
      this.quota = quota;
      this.portal = this.portals.find((p) => p.portal_id === this.portal?.portal_id) ?? this.portals.find((p) => p.default) ?? this.portals[0] ?? null;
      await this.loadTemplate();
    } catch (e) {
      this.error = problemMessage(e);
    }
  }

  private async loadTemplate(): Promise<void> {
    const request = ++this.templateRequest;
    this.tplError = null;
    this.preview = null;
    if (!this.portal) {
      this.template = null;
      return;
    }
    try {
      const template = await this.api.get<Template>(this.templatePath());
      if (request !== this.templateRequest) return;
      this.template = template;
    } catch (e) {
      if (request === this.templateRequest) this.error = problemMessage(e);
      return;
    }
    await this.renderPreview();
  }

  /** The template's path, for the locale being edited. */
  private templatePath(suffix = ""): string {
    const q = this.locale ? `?locale=${encodeURIComponent(this.locale)}` : "";
    return `/v1/portals/${enc(this.portal?.portal_id ?? "")}/templates/${this.kind}${suffix}${q}`;
  }

  private done(message: string): void {
    this.notice = message;
    this.error = "";
    this.formErrors = {};
  }

  private async saveProfile(e: Event): Promise<void> {
    e.preventDefault();
    const d = new FormData(e.target as HTMLFormElement);
    const v = (k: string) => String(d.get(k) ?? "").trim() || null;
    try {
      this.profile = await this.api.put<Profile>("/v1/tenant/profile", {
        display_name: v("display_name") ?? "",
        support_email: v("support_email"),
        logo_url: v("logo_url"),
        brand_color: v("brand_color"),
      });
      this.done("Profile saved.");
    } catch (err) {
      this.formErrors = fieldErrors(err);
      this.error = problemMessage(err);
    }
  }

  private async saveQuota(e: Event): Promise<void> {
    e.preventDefault();
    const d = new FormData(e.target as HTMLFormElement);
    try {
      this.quota = await this.api.put<Quota>("/v1/settings", { emails_per_hour: Number(d.get("emails_per_hour")), sms_per_hour: Number(d.get("sms_per_hour")) });
      this.done("Sending quota saved.");
    } catch (err) {
      this.formErrors = fieldErrors(err);
      this.error = problemMessage(err);
    }
  }

  private async savePortal(e: Event): Promise<void> {
    e.preventDefault();
    const d = new FormData(e.target as HTMLFormElement);
    const id = this.portal?.portal_id || String(d.get("portal_id") ?? "").trim();
    const num = (k: string) => (String(d.get(k) ?? "").trim() ? Number(d.get(k)) : undefined);
    const body: Record<string, unknown> = {
      name: String(d.get("name") ?? "").trim(),
      default: d.get("default") === "on",
      claim_url: String(d.get("claim_url") ?? "").trim() || null,
      code_ttl_hours: num("code_ttl_hours"),
      link_ttl_hours: num("link_ttl_hours"),
      auto_generate: d.get("auto_generate") === "on",
      auto_email: d.get("auto_email") === "on",
      reminder_days_before_expiry: num("reminder_days_before_expiry"),
      claim_checks: FACTS.map(([f]) => f).filter((f) => d.get(`check_${f}`) === "on"),
      default_locale: String(d.get("default_locale") ?? "").trim() || undefined,
      // Email is always on for the kinds listed; "also by text" adds SMS.
      channels: Object.fromEntries(SMS_KINDS.filter((k) => d.get(`sms_${k}`) === "on").map((k) => [k, ["email", "sms"]])),
    };
    for (const k of ["identity_issuer", "identity_audience", "identity_jwks_url"]) {
      const v = String(d.get(k) ?? "").trim();
      if (v) body[k] = v;
    }
    try {
      this.portal = await this.api.put<Portal>(`/v1/portals/${enc(id)}`, body);
      this.done(`Portal ${this.portal.name} saved.`);
      await this.load();
    } catch (err) {
      this.formErrors = fieldErrors(err);
      this.error = problemMessage(err);
    }
  }

  private parts(): { subject: string; text: string; html: string; sms: string } {
    const get = (p: string) => this.querySelector<HTMLTextAreaElement>(`#tpl-${p}`)?.value ?? "";
    return { subject: get("subject"), text: get("text"), html: get("html"), sms: get("sms") };
  }

  /** The preview, a moment after typing stops. */
  private edited(): void {
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.renderPreview(), 400);
  }

  private async renderPreview(): Promise<void> {
    // The preview renders a template, which only administrators may (the API answers 403 otherwise).
    if (!this.portal || !can(this.session, "admin")) return;
    const request = this.templateRequest;
    await this.updateComplete;
    const parts = this.template && !this.querySelector("#tpl-text") ? this.template : this.parts();
    try {
      const preview = await this.api.postSafe<Preview>(this.templatePath("/preview"), {
        subject: parts.subject,
        text: parts.text,
        html: parts.html,
        sms: parts.sms,
      });
      if (request !== this.templateRequest) return;
      this.preview = preview;
      this.tplError = null;
    } catch (e) {
      if (request !== this.templateRequest) return;
      this.tplError = templateError(e);
      if (!this.tplError) this.error = problemMessage(e);
    }
  }

  private async saveTemplate(e: Event): Promise<void> {
    e.preventDefault();
    if (!this.portal) return;
    try {
      // Saved for the locale being edited; none picked: the portal's default language.
      this.template = await this.api.put<Template>(this.templatePath(), this.parts());
      this.tplError = null;
      this.done(`Template saved (${this.template.locale}).`);
    } catch (err) {
      this.notice = "";
      this.tplError = templateError(err);
      if (!this.tplError) this.error = problemMessage(err);
      else this.goToError();
    }
  }

  /** Puts the cursor on the refused line, so it can be fixed at once. */
  private goToError(): void {
    const err = this.tplError;
    const area = err && this.querySelector<HTMLTextAreaElement>(`#tpl-${err.part}`);
    if (!err || !area) return;
    const lines = area.value.split("\n");
    const line = Math.min(Math.max(err.line ?? 1, 1), lines.length);
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + lines[line - 1].length);
  }

  render() {
    const admin = can(this.session, "admin");
    // A form per portal and per template (keyed): what was typed for one never shows in another.
    return html`
      <h1 tabindex="-1">Portal Administration</h1>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
      <p role="status" class="notice">${this.notice}</p>
      ${admin ? nothing : html`<p class="muted">Changing these settings needs an administrator (portal:admin); you can read them.</p>`}
      <div class="admin">
        ${this.profileForm(admin)}
        ${keyed(this.portal?.portal_id ?? "new", this.portalForm(admin))}
        ${keyed(`${this.portal?.portal_id}/${this.kind}/${this.locale}`, this.templateEditor(admin))}
      </div>
    `;
  }

  private profileForm(admin: boolean) {
    const p = this.profile;
    if (!p) return nothing;
    return html`<section class="panel" aria-labelledby="profile-h">
      <h2 id="profile-h">Organisation</h2>
      <p class="muted">Shown to the people you invite: on the claim pages and in every email.${p.is_default ? " Not set yet: they see your tenant id." : ""}</p>
      <form class="stack" @submit=${this.saveProfile}><fieldset ?disabled=${!admin}>
        ${field("display_name", "Display name", "text", this.formErrors, true, p.is_default ? "" : p.display_name)}
        ${field("support_email", "Support email", "email", this.formErrors, false, p.support_email ?? "")}
        ${field("logo_url", "Logo URL (https)", "url", this.formErrors, false, p.logo_url ?? "")}
        ${field("brand_color", "Brand colour (#rrggbb)", "text", this.formErrors, false, p.brand_color ?? "")}
        ${admin ? html`<button type="submit">Save profile</button>` : nothing}
      </fieldset></form>
      ${this.quota
        ? html`<form class="stack" @submit=${this.saveQuota}><fieldset ?disabled=${!admin}>
            <label>Emails per hour (at most ${this.quota.max_emails_per_hour}; ${this.quota.sent_this_hour} sent this hour)
              <input name="emails_per_hour" type="number" min="1" max=${this.quota.max_emails_per_hour} .value=${String(this.quota.emails_per_hour)}></label>
            <label>Texts per hour (at most ${this.quota.max_sms_per_hour}; ${this.quota.sms_sent_this_hour} sent this hour)
              <input name="sms_per_hour" type="number" min="1" max=${this.quota.max_sms_per_hour} .value=${String(this.quota.sms_per_hour)}></label>
            ${admin ? html`<button type="submit">Save quota</button>` : nothing}
          </fieldset></form>`
        : nothing}
    </section>`;
  }

  private portalForm(admin: boolean) {
    const p = this.portal;
    const e = this.formErrors;
    return html`<section class="panel" aria-labelledby="portal-h">
      <h2 id="portal-h">Portals</h2>
      <label>Portal <select id="portal-pick" @change=${(ev: Event) => {
        const id = (ev.target as HTMLSelectElement).value;
        this.portal = this.portals.find((x) => x.portal_id === id) ?? null;
        this.formErrors = {};
        void this.loadTemplate();
      }}>
        ${this.portals.map((x) => html`<option value=${x.portal_id} ?selected=${x.portal_id === p?.portal_id}>${x.name}${x.default ? " (default)" : ""}</option>`)}
        ${admin ? html`<option value="" ?selected=${!p}>New portal…</option>` : nothing}
      </select></label>
      <form class="stack" id="portal-form" @submit=${this.savePortal}><fieldset ?disabled=${!admin}>
        ${p ? nothing : field("portal_id", "Portal id", "text", e, true)}
        ${field("name", "Name", "text", e, true, p?.name ?? "")}
        <label class="inline"><input type="checkbox" name="default" ?checked=${p?.default ?? false}> Default portal (listed for every contact)</label>
        ${field("claim_url", "Claim URL (empty: the hosted claim page)", "url", e, false, p?.claim_url ?? "")}
        ${field("code_ttl_hours", "Codes expire after (hours)", "number", e, false, String(p?.code_ttl_hours ?? 168))}
        ${field("link_ttl_hours", "Links expire after (hours)", "number", e, false, String(p?.link_ttl_hours ?? 168))}
        <fieldset><legend>Claim checks (facts of the record a claim must match)</legend>
          ${FACTS.map(([f, label]) => html`<label><input type="checkbox" name="check_${f}" ?checked=${p?.claim_checks.includes(f) ?? false}> ${label}</label>`)}
        </fieldset>
        <fieldset><legend>Scheduler</legend>
          <label><input type="checkbox" name="auto_generate" ?checked=${p?.auto_generate ?? false}> Generate codes for related contacts</label>
          <label><input type="checkbox" name="auto_email" ?checked=${p?.auto_email ?? false}> Email codes never emailed</label>
        </fieldset>
        ${field("reminder_days_before_expiry", "Reminder, days before expiry (empty: none)", "number", e, false, p?.reminder_days_before_expiry ? String(p.reminder_days_before_expiry) : "")}
        ${field("default_locale", "Default language (en, es, …) for contacts without one", "text", e, false, p?.default_locale ?? "en")}
        <fieldset id="channels"><legend>Also send by text message (to the contact's mobile phone)</legend>
          ${SMS_KINDS.map((k) => html`<label><input type="checkbox" name="sms_${k}" ?checked=${p?.channels?.[k]?.includes("sms") ?? false}> ${KINDS.find(([x]) => x === k)?.[1]}</label>`)}
        </fieldset>
        <details><summary>Identity provider (claims vouched for by an ID token)</summary>
          ${field("identity_issuer", "Issuer", "url", e, false, p?.identity_issuer ?? "")}
          ${field("identity_audience", "Audience (client id)", "text", e, false, p?.identity_audience ?? "")}
          ${field("identity_jwks_url", "JWKS URL", "url", e, false, p?.identity_jwks_url ?? "")}
        </details>
        ${admin ? html`<button type="submit">Save portal</button>` : nothing}
      </fieldset></form>
    </section>`;
  }

  private templateEditor(admin: boolean) {
    const t = this.template;
    if (!this.portal || !t) return nothing;
    const err = this.tplError;
    return html`<section class="panel wide" aria-labelledby="tpl-h">
      <h2 id="tpl-h">Email templates · ${this.portal.name}</h2>
      <label>Email <select id="tpl-kind" @change=${(ev: Event) => { this.kind = (ev.target as HTMLSelectElement).value; void this.loadTemplate(); }}>
        ${KINDS.map(([k, label]) => html`<option value=${k} ?selected=${k === this.kind}>${label}</option>`)}
      </select></label>
      <label>Language <input id="tpl-locale" list="tpl-locales" placeholder=${t.default_locale} .value=${this.locale}
        @change=${(ev: Event) => { this.locale = (ev.target as HTMLInputElement).value.trim(); void this.loadTemplate(); }}></label>
      <datalist id="tpl-locales">${[...new Set(["en", "es", ...t.locales])].map((l) => html`<option value=${l}></option>`)}</datalist>
      <p class="muted" id="tpl-source">${t.source === "default" ? `The built-in default in ${t.locale} (not saved for this portal yet).` : `This portal's own template in ${t.locale}.`}
        ${t.locales.length ? `Saved in: ${t.locales.join(", ")}.` : ""}
        Variables: ${t.variables.map((v) => html`<code>{{ ${v} }}</code> `)}</p>
      <form class="editor" @submit=${this.saveTemplate} @input=${this.edited}>
        <fieldset ?disabled=${!admin}>
          ${PARTS.map((part) => {
            const bad = err?.part === part;
            return html`<label>${PART_LABELS[part]}
              <textarea id="tpl-${part}" name=${part} rows=${part === "subject" ? 1 : part === "sms" ? 3 : 10} spellcheck="false"
                aria-invalid=${bad ? "true" : "false"} aria-describedby=${bad ? "tpl-error" : nothing}
                .value=${t[part]}></textarea></label>
              ${bad ? html`<p class="field-error template-error" id="tpl-error" role="alert" data-line=${err.line ?? ""}>
                  ${err.line ? html`Line ${err.line}: ` : nothing}${err.detail}
                  <button type="button" class="link" @click=${this.goToError}>Go to the line</button></p>` : nothing}`;
          })}
          ${admin ? html`<button type="submit">Save template</button>` : nothing}
        </fieldset>
      </form>
      <div class="preview" aria-labelledby="pv-h">
        <h3 id="pv-h">Preview (sample values)</h3>
        ${this.preview
          ? html`<p><strong id="preview-subject">${this.preview.subject}</strong></p><pre id="preview-text">${this.preview.text}</pre>
              <h4>Text message</h4><pre id="preview-sms">${this.preview.sms.text}</pre>
              <p class="muted" id="preview-sms-info">${this.preview.sms.length} characters · ${this.preview.sms.segments} segment${this.preview.sms.segments === 1 ? "" : "s"} · ${this.preview.sms.encoding}${this.preview.sms.encoding === "UCS-2" ? " (a character outside GSM-7: 70 per segment)" : ""}</p>`
          : admin
            ? html`<p class="muted">No preview while the template has an error.</p>`
            : html`<p class="muted">The preview needs an administrator (portal:admin).</p>`}
      </div>
    </section>`;
  }
}
customElements.define("pa-admin", AdminScreen);
