// The audit trail (admin): every staff action, newest first, filtered by actor or target.

import * as api from "./api";
import { may } from "./api";
import { h, time } from "./dom";
import { go, hashQuery, type Screen } from "./router";
import { form, pagedTable } from "./ui";

interface AuditRecord {
  at: string;
  actor: string;
  staff_id: string | null;
  role: string | null;
  member_id: string | null;
  action: string;
  target: string;
  reason: string | null;
  outcome: string;
}

export const auditTrail: Screen = {
  path: "/audit",
  title: "Audit",
  nav: true,
  allowed: () => may("audit.read"),
  render: async (main) => {
    const q = hashQuery();
    const actor = q.get("actor") ?? "";
    const target = q.get("target") ?? "";
    main.append(
      h("h1", null, "Audit trail"),
      form(
        { class: "filters" },
        [
          h("label", null, "Actor ", h("input", { name: "actor", value: actor, placeholder: "staff id or member:u_…" })),
          h("label", null, "Target ", h("input", { name: "target", value: target, placeholder: "listing:l_… · order:… · ticket:t_…" })),
          h("button", { type: "submit" }, "Filter"),
        ],
        async (data) => go("#/audit" + api.query({ actor: String(data.get("actor")).trim(), target: String(data.get("target")).trim() })),
      ),
      h("p", { class: "muted" }, "Newest first. Without a filter: every staff action."),
    );
    await pagedTable<AuditRecord>(
      main,
      (cursor) => api.get(`/admin/v1/audit${api.query({ actor, target, cursor, limit: q.get("limit") ?? "50" })}`),
      ["When", "Who", "Action", "Target", "Reason", "Outcome"],
      (r) =>
        h(
          "tr",
          { "data-testid": "audit-row" },
          h("td", null, time(r.at)),
          h("td", null, r.staff_id ? `${r.staff_id} (${r.role})` : r.member_id ?? r.actor),
          h("td", null, r.action),
          h("td", null, r.target),
          h("td", null, r.reason ?? ""),
          h("td", { class: r.outcome === "ok" ? "" : "overdue" }, r.outcome),
        ),
    );
  },
};
