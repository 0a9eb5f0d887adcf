// Tickets: the queue (earliest due first, with each ticket's clock and a privacy request's day of
// 15) and a ticket (its history, reply and close, the account deletion a privacy request asks
// for, and the panels of what it is about: the order, the reported listing, member or review).

import * as api from "./api";
import { may } from "./api";
import { h, time } from "./dom";
import { listingPanel, reviewPanel } from "./moderation";
import { type Order, orderPanel } from "./orders";
import { go, hashQuery, route, type Screen } from "./router";
import { facts, form, memberLink, pagedTable, reasonField } from "./ui";

const KINDS = ["", "privacy", "dispute", "report", "order", "other"];

interface TicketItem {
  id: string;
  kind: string;
  subject: string;
  status: string;
  due_at: string;
  overdue: boolean;
  overdue_at: string | null;
  created_at: string;
  author_id: string;
  order_id: string | null;
  listing_id: string | null;
  user_id: string | null;
  review_id: string | null;
  messages_count: number;
}

/** Open past its due time (flagged by the job, or not yet). */
function isLate(t: TicketItem): boolean {
  return t.status === "open" && (t.overdue || new Date(t.due_at).getTime() < Date.now());
}

/** The clock a ticket runs against: overdue by / due in, and a privacy request's day of 15. */
function clock(t: TicketItem): HTMLElement {
  const ms = new Date(t.due_at).getTime() - Date.now();
  const hours = Math.round(Math.abs(ms) / 3_600_000);
  const span = hours >= 48 ? `${Math.round(hours / 24)} d` : `${hours} h`;
  const late = isLate(t);
  const text = t.status !== "open" ? "closed" : late ? `overdue ${span}` : `due in ${span}`;
  const cell = h("span", { class: late ? "overdue" : ms < 86_400_000 ? "soon" : "" }, text);
  if (t.kind === "privacy" && t.status === "open") {
    const day = Math.floor((Date.now() - new Date(t.created_at).getTime()) / 86_400_000) + 1;
    cell.append(" ", h("span", { class: "badge privacy", title: "privacy requests are answered within 15 days" }, `day ${day}/15`));
  }
  return cell;
}

export const ticketQueue: Screen = {
  path: "/queue",
  title: "Tickets",
  nav: true,
  allowed: () => may("tickets.read"),
  render: async (main) => {
    const q = hashQuery();
    const kind = q.get("kind") ?? "";
    const status = q.get("status") ?? "open";
    const filters = h(
      "form",
      { class: "filters" },
      h("label", null, "Kind ", h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k, selected: k === kind }, k || "all")))),
      h(
        "label",
        null,
        "Status ",
        h("select", { name: "status" }, ["open", "closed"].map((s) => h("option", { value: s, selected: s === status }, s))),
      ),
    );
    filters.addEventListener("change", () => {
      const data = new FormData(filters);
      go("#/queue" + api.query({ kind: String(data.get("kind")), status: String(data.get("status")) }));
    });
    main.append(h("h1", null, "Ticket queue"), h("p", { class: "muted" }, "Earliest due first, so overdue tickets lead."), filters);
    await pagedTable<TicketItem>(
      main,
      (cursor) => api.get(`/admin/v1/tickets${api.query({ kind, status, cursor, limit: q.get("limit") ?? "25" })}`),
      ["Due", "Kind", "Subject", "Messages", "Filed"],
      (t) =>
        h(
          "tr",
          { class: isLate(t) ? "overdue-row" : null, "data-testid": "ticket-row" },
          h("td", null, clock(t)),
          h("td", null, h("span", { class: `badge ${t.kind}` }, t.kind)),
          h("td", null, h("a", { href: `#/tickets/${encodeURIComponent(t.id)}` }, t.subject || t.id)),
          h("td", null, t.messages_count),
          h("td", null, time(t.created_at)),
        ),
      "No tickets in this queue.",
    );
  },
};

interface Message {
  id: string;
  from: "member" | "staff";
  user_id?: string;
  staff_id?: string;
  text: string;
  images: string[];
  created_at: string;
}

interface Ticket extends TicketItem {
  author: { id: string; nickname: string | null };
  other_party_id: string | null;
  closed_at: string | null;
  closed_by: string | null;
  resolution: string | null;
  messages: Message[];
  order: Order | null;
}

export const ticket: Screen = {
  path: "/tickets/:id",
  title: "Ticket",
  allowed: () => may("tickets.read"),
  render: async (main, { id }) => {
    const t = await api.get<Ticket>(`/admin/v1/tickets/${encodeURIComponent(id)}`);
    main.append(
      h("p", null, h("a", { href: "#/queue" }, "← Queue")),
      h("h1", null, t.subject || t.id, " ", h("span", { class: `badge ${t.kind}` }, t.kind), " ", h("span", { class: "badge", "data-testid": "ticket-status" }, t.status)),
      facts([
        ["Ticket", t.id],
        ["Due", clock(t)],
        ["Author", memberLink(t.author?.id ?? t.author_id)],
        ["Other party", memberLink(t.other_party_id)],
        ["Filed", time(t.created_at)],
        ...(t.status === "closed"
          ? ([
              ["Closed", time(t.closed_at)],
              ["Resolution", h("span", { "data-testid": "resolution" }, t.resolution ?? "—")],
            ] as [string, Node | string][])
          : []),
      ]),
    );
    if (t.order) main.append(orderPanel(t.order, t.id));
    if (t.listing_id) main.append(await listingPanel(t.listing_id));
    if (t.user_id) main.append(h("p", null, "Reported member: ", memberLink(t.user_id)));
    if (t.review_id) main.append(reviewPanel(t.review_id));

    main.append(h("h2", null, `History (${t.messages.length})`));
    const history = h("ol", { class: "history", "data-testid": "history" });
    for (const m of t.messages) {
      history.append(
        h(
          "li",
          { class: m.from },
          h("div", { class: "meta" }, m.from === "staff" ? `staff ${m.staff_id ?? ""}` : `member ${m.user_id ?? ""}`, " · ", time(m.created_at)),
          h("div", { class: "text" }, m.text),
          m.images.length ? h("div", { class: "muted" }, `${m.images.length} image(s)`) : null,
        ),
      );
    }
    main.append(history);

    if (t.status === "open" && may("tickets.answer")) {
      main.append(
        form(
          { class: "stack", "data-testid": "reply" },
          [h("label", null, "Reply to the member", h("textarea", { name: "text", required: true, maxlength: 2000, rows: 3 })), h("button", { type: "submit" }, "Send reply")],
          async (data) => {
            await api.post(`/admin/v1/tickets/${encodeURIComponent(t.id)}/messages`, { text: String(data.get("text")).trim() });
            await route();
          },
        ),
        form(
          { class: "stack", "data-testid": "close" },
          [
            h("label", null, "Resolution (the member sees it)", h("textarea", { name: "resolution", required: true, maxlength: 500, rows: 2 })),
            h("button", { type: "submit" }, "Close ticket"),
          ],
          async (data) => {
            await api.post(`/admin/v1/tickets/${encodeURIComponent(t.id)}/close`, { resolution: String(data.get("resolution")).trim() });
            await route();
          },
        ),
      );
      if (t.kind === "privacy" && may("members.delete")) main.append(deletionForm(t));
    }
  },
};

/** A privacy request asking for the account's deletion (through customer service). */
function deletionForm(t: Ticket): HTMLElement {
  return h(
    "details",
    { class: "panel" },
    h("summary", null, "Delete the author's account (they asked for it in this ticket)"),
    form(
      { class: "stack" },
      [reasonField("reason", "Note (audited)"), h("button", { type: "submit", class: "danger" }, "Delete account")],
      async (data) => {
        if (!confirm("Delete this member's account? This cannot be undone.")) return;
        await api.post(`/admin/v1/members/${encodeURIComponent(t.author_id)}/deletion`, {
          ticket_id: t.id,
          reason: String(data.get("reason")).trim() || undefined,
        });
        await route();
      },
    ),
  );
}
