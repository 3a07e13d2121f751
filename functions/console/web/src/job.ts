// <pa-job-progress job-id="…">: follows a bulk activation job (GET /v1/jobs/{id})
// until it is done, as a progress bar with the job's counters.

import { LitElement, html, nothing } from "lit";
import { Api, ApiProblem, enc } from "./api.js";
import { problemMessage } from "./portlet.js";

export interface Job {
  job_id: string;
  state: "queued" | "running" | "done";
  total: number;
  activated: number;
  skipped_no_email: number;
  skipped_already_active: number;
  skipped_missing_facts: number;
  skipped_suppressed: number;
  failed: number;
}

export function handled(j: Job): number {
  return j.activated + j.skipped_no_email + j.skipped_already_active + j.skipped_missing_facts + (j.skipped_suppressed ?? 0) + j.failed;
}

export class JobProgress extends LitElement {
  static properties = { jobId: { type: String, attribute: "job-id" }, job: { state: true }, error: { state: true } };
  jobId = "";
  api: Api | null = null;
  job: Job | null = null;
  error = "";
  private timer: number | undefined;
  /** Failed polls in a row: the wait doubles with each (1 s up to 30 s). */
  private failures = 0;

  createRenderRoot() {
    return this;
  }

  updated(changed: Map<string, unknown>): void {
    if (changed.has("jobId") && this.jobId) {
      this.job = null;
      void this.poll();
    }
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    clearTimeout(this.timer);
    if (!this.api || !this.isConnected) return;
    try {
      this.job = await this.api.get<Job>(`/v1/jobs/${enc(this.jobId)}`);
      this.error = "";
      this.failures = 0;
    } catch (e) {
      this.error = problemMessage(e);
      // A refusal (gone, forbidden, signed out) will not change by asking again; a busy or
      // unreachable service may, so those are asked again, less and less often.
      if (e instanceof ApiProblem && e.status >= 400 && e.status < 500 && e.status !== 429) return;
      this.failures++;
    }
    if (this.job?.state !== "done") {
      this.timer = window.setTimeout(() => void this.poll(), Math.min(1000 * 2 ** this.failures, 30_000));
    } else this.dispatchEvent(new CustomEvent("job-done", { detail: this.job, bubbles: true }));
  }

  render() {
    const j = this.job;
    const done = j ? handled(j) : 0;
    return html`<div class="job">
      <label for="bar-${this.jobId}">${j?.state === "done" ? "Activation done" : "Activating…"}</label>
      <progress id="bar-${this.jobId}" max=${j?.total ?? 1} value=${done}>${done} of ${j?.total ?? "?"}</progress>
      <p role="status" class="counters" data-state=${j?.state ?? "queued"}>
        ${j
          ? html`${done} of ${j.total} handled (${j.state}): ${j.activated} activated, ${j.skipped_no_email} skipped without email,
              ${j.skipped_missing_facts} skipped for missing facts, ${j.skipped_suppressed ?? 0} skipped for a bounced address,
              ${j.skipped_already_active} already active, ${j.failed} failed.`
          : "Waiting for the job…"}
      </p>
      ${this.error ? html`<p role="alert">${this.error}</p>` : nothing}
    </div>`;
  }
}
customElements.define("pa-job-progress", JobProgress);
