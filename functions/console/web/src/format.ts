// Shared wording and formatting of the console and the portlet.

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A portal state as staff read it (seed 001's Access-Pending, Access-Expired, Access-Disabled). */
export function stateLabel(state: string): string {
  switch (state) {
    case "active":
      return "Active";
    case "pending":
      return "Access-Pending";
    case "expired":
      return "Access-Expired";
    case "disabled":
      return "Access-Disabled";
    case "locked":
      return "Locked";
    default:
      return "No access";
  }
}
