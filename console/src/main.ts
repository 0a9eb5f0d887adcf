// Renji staff console: a hash-routed single page over the audited staff API (/admin/v1).
// No framework: a handful of forms and tables, built with `h` (dom.ts), keep the bundle small
// and the first paint a single script away.
//
// The shell and the routing are router.ts, the shared widgets ui.ts.

import * as api from "./api";
import { ApiError, may } from "./api";
import { clear, h, masked, time, yuan } from "./dom";
import { reviewQueues } from "./review";
import { go, hashQuery, root, route, screen, whenNoSession } from "./router";
import { facts, form, memberLink, pagedTable, reasonField } from "./ui";

// ---- sign-in ------------------------------------------------------------------------------

/** WeCom web login (the company's self-built app), when the build was given its ids. */
function wecomConfig(): { corp: string; agent: string } | null {
  const corp = document.querySelector<HTMLMetaElement>('meta[name="renji-wecom-corp-id"]')?.content;
  const agent = document.querySelector<HTMLMetaElement>('meta[name="renji-wecom-agent-id"]')?.content;
  return corp && agent ? { corp, agent } : null;
}

function signInScreen(message?: string): void {
  clear(root);
  document.title = "Sign in · Renji console";
  const wecom = wecomConfig();
  const box = h("section", { class: "signin" }, h("h1", null, "Renji staff console"));
  if (message) box.append(h("p", { class: "muted" }, message));
  if (wecom) {
    const state = crypto.randomUUID();
    // Only the login's state crosses the redirect (never the session).
    sessionStorage.setItem("renji-wecom-state", state);
    const redirect = location.origin + location.pathname;
    const url =
      "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp" +
      `&appid=${encodeURIComponent(wecom.corp)}&agentid=${encodeURIComponent(wecom.agent)}` +
      `&redirect_uri=${encodeURIComponent(redirect)}&state=${encodeURIComponent(state)}`;
    box.append(h("p", null, h("a", { class: "button", href: url }, "Sign in with WeCom 企业微信")));
  }
  box.append(
    form(
      { class: "stack", "data-testid": "signin" },
      [
        h(
          "label",
          null,
          wecom ? "Or paste a WeCom login code" : "WeCom login code (locally: staff:<name>:<role>)",
          h("input", { name: "code", required: true, autocomplete: "off", placeholder: "staff:alice:support" }),
        ),
        h("button", { type: "submit" }, "Sign in"),
      ],
      async (data) => {
        await api.signIn(String(data.get("code")).trim());
        await route();
      },
    ),
  );
  root.append(box);
}

/** WeCom redirected back with `?code=&state=`: sign in with it, then drop it from the address. */
async function signInFromRedirect(): Promise<boolean> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code) return false;
  const expected = sessionStorage.getItem("renji-wecom-state");
  sessionStorage.removeItem("renji-wecom-state");
  history.replaceState(null, "", location.pathname + location.hash);
  if (!expected || params.get("state") !== expected) {
    signInScreen("The WeCom login did not come from this console: sign in again.");
    return true;
  }
  try {
    await api.signIn(code);
  } catch (e) {
    signInScreen(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
    return true;
  }
  return false;
}

// ---- ticket queue ---------------------------------------------------------------------------

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

screen({
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
});

// ---- ticket detail (with a dispute's order) ---------------------------------------------------------

interface Message {
  id: string;
  from: "member" | "staff";
  user_id?: string;
  staff_id?: string;
  text: string;
  images: string[];
  created_at: string;
}

interface Order {
  id: string;
  order_no: string;
  buyer_id: string;
  seller_id: string;
  listing: { id: string; title: string };
  quantity: number;
  amount_fen: number;
  refunded_fen: number;
  status: string;
  created_at: string;
  timeline: { status: string; at: string; actor: string; reason?: string }[];
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

screen({
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
    if (t.order) main.append(orderPanel(t.order, t));
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
});

/** A dispute's order: its timeline and the two decisions. */
function orderPanel(o: Order, t: Ticket): HTMLElement {
  const panel = h(
    "section",
    { class: "panel", "data-testid": "order" },
    h("h2", null, "Order ", o.order_no ?? o.id, " ", h("span", { class: "badge", "data-testid": "order-status" }, o.status)),
    facts([
      ["Listing", o.listing?.title ?? "—"],
      ["Buyer", memberLink(o.buyer_id)],
      ["Seller", memberLink(o.seller_id)],
      ["Amount", o.quantity ? `${yuan(o.amount_fen)} (×${o.quantity})` : yuan(o.amount_fen)],
      ["Refunded", yuan(o.refunded_fen)],
    ]),
    h("h3", null, "Timeline"),
    h(
      "table",
      { "data-testid": "timeline" },
      h("thead", null, h("tr", null, ["When", "Status", "By", "Reason"].map((c) => h("th", null, c)))),
      h(
        "tbody",
        null,
        o.timeline.map((s) => h("tr", null, h("td", null, time(s.at)), h("td", null, s.status), h("td", null, s.actor), h("td", null, s.reason ?? ""))),
      ),
    ),
  );
  if (o.status === "disputed" && may("orders.decide")) {
    const refundable = o.amount_fen - o.refunded_fen;
    panel.append(
      h("h3", null, "Decide the dispute"),
      form(
        { class: "stack", "data-testid": "decision" },
        [
          h(
            "label",
            null,
            `Refund amount in yuan (blank: all ${yuan(refundable)})`,
            h("input", { name: "amount", inputmode: "decimal", pattern: "\\d+(\\.\\d{1,2})?", placeholder: (refundable / 100).toFixed(2) }),
          ),
          reasonField(),
          h(
            "div",
            { class: "row" },
            h("button", { type: "submit", name: "action", value: "refund" }, "Refund buyer"),
            h("button", { type: "submit", name: "action", value: "release" }, "Release to seller"),
          ),
        ],
        async (data) => {
          const action = String(data.get("action"));
          const body: Record<string, unknown> = { action, reason: String(data.get("reason")).trim() };
          const amount = String(data.get("amount") ?? "").trim();
          if (action === "refund" && amount) body.amount_fen = Math.round(Number(amount) * 100);
          if (!confirm(action === "refund" ? `Refund ${amount ? "¥" + amount : "the whole order"} to the buyer?` : "Release the order to the seller?")) return;
          await api.post(`/admin/v1/orders/${encodeURIComponent(o.id)}/decision`, body);
          go(`#/tickets/${encodeURIComponent(t.id)}`);
        },
      ),
    );
  }
  return panel;
}

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

// ---- listings and members: take-down and restore ----------------------------------------------

interface Listing {
  id: string;
  owner_id: string;
  kind: string;
  title: string;
  city: string;
  price_fen: number;
  status: string;
  takedown_reason?: string | null;
}

function moderationForms(listingId: string, status: string | null, after: () => void): HTMLElement {
  const box = h("div", { class: "row" });
  if (!may("listings.moderate")) return box;
  const act = (what: "takedown" | "restore", label: string) =>
    form({ class: "inline", "data-testid": what }, [reasonField("reason", `${label}: reason (required, audited)`), h("button", { type: "submit", class: what === "takedown" ? "danger" : "" }, label)], async (data) => {
      await api.post(`/admin/v1/listings/${encodeURIComponent(listingId)}/${what}`, { reason: String(data.get("reason")).trim() });
      after();
    });
  if (status !== "taken_down") box.append(act("takedown", "Take down"));
  if (status === null || status === "taken_down") box.append(act("restore", "Restore"));
  return box;
}

/** Owners of the listings seen while public, so a taken-down one still links to its owner. */
const knownOwners = new Map<string, string>();

/** A reported listing: the public view when it is public, else what its owner's record shows. */
async function listingPanel(id: string): Promise<HTMLElement> {
  const panel = h("section", { class: "panel", "data-testid": "listing" }, h("h2", null, "Reported listing"));
  let listing: Listing | null = null;
  try {
    listing = await api.getPublic<Listing>(`/v1/listings/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  if (listing) {
    knownOwners.set(id, listing.owner_id);
    panel.append(
      facts([
        ["Title", listing.title],
        ["Owner", memberLink(listing.owner_id)],
        ["Status", h("span", { "data-testid": "listing-status" }, listing.status)],
        ["Price", yuan(listing.price_fen)],
        ["City", listing.city],
      ]),
    );
  } else {
    panel.append(
      facts([
        ["Listing", id],
        ["Owner", memberLink(knownOwners.get(id))],
        ["Status", h("span", { "data-testid": "listing-status" }, "not public (taken down, removed or a draft)")],
      ]),
    );
  }
  panel.append(moderationForms(id, listing ? listing.status : null, () => void route()));
  return panel;
}

function reviewPanel(id: string): HTMLElement {
  const panel = h("section", { class: "panel" }, h("h2", null, "Reported review"), h("p", null, id));
  if (may("reviews.hide"))
    panel.append(
      form({ class: "inline" }, [reasonField(), h("button", { type: "submit", class: "danger" }, "Hide review")], async (data) => {
        await api.post(`/admin/v1/reviews/${encodeURIComponent(id)}/hide`, { reason: String(data.get("reason")).trim() });
        await route();
      }),
    );
  return panel;
}

interface Member {
  profile: { id: string; nickname: string | null; verified: unknown; listings_count: number; rating_sum: number; rating_count: number; created_at: string; unavailable: boolean };
  /** Set while staff have the account suspended. */
  suspension: { at: string; by: string; reason: string } | null;
  /** Masked by the API (`*三`, `11**************2X`); masked again here whatever comes. */
  verification: { status: string; kind: string; name: string; number: string; reason: string | null } | null;
  listings: { items: Listing[]; more: boolean };
  orders_as_buyer: { items: Order[]; more: boolean };
  orders_as_seller: { items: Order[]; more: boolean };
}

/**
 * Suspend (sessions end, sign-in refused, public listings hidden, profile unavailable; orders go
 * on) or restore (what the suspension hid comes back), with a required reason: moderators and
 * admins only.
 */
function suspensionForm(m: Member): HTMLElement {
  const box = h("div", { class: "row" });
  if (!may("members.suspend")) return box;
  const what = m.suspension ? "restore" : "suspend";
  const label = m.suspension ? "Restore account" : "Suspend account";
  box.append(
    form(
      { class: "inline", "data-testid": `member-${what}` },
      [reasonField("reason", `${label}: reason (required, audited)`), h("button", { type: "submit", class: what === "suspend" ? "danger" : "" }, label)],
      async (data) => {
        await api.post(`/admin/v1/members/${encodeURIComponent(m.profile.id)}/${what}`, { reason: String(data.get("reason")).trim() });
        await route();
      },
    ),
  );
  if (!m.suspension)
    box.append(h("p", { class: "muted" }, "Ends every session of the member, refuses sign-in, hides their published listings and profile; orders in progress go on."));
  return box;
}

screen({
  path: "/members",
  title: "Members",
  nav: true,
  allowed: () => may("members.read"),
  render: (main) => {
    main.append(
      h("h1", null, "Look up a member"),
      form({ class: "inline" }, [h("label", null, "Member id ", h("input", { name: "id", required: true, placeholder: "u_…" })), h("button", { type: "submit" }, "Open")], async (data) => {
        go(`#/members/${encodeURIComponent(String(data.get("id")).trim())}`);
      }),
    );
  },
});

screen({
  path: "/members/:id",
  title: "Member",
  allowed: () => may("members.read"),
  render: async (main, { id }) => {
    const m = await api.get<Member>(`/admin/v1/members/${encodeURIComponent(id)}`);
    const v = m.verification;
    main.append(
      h("h1", null, m.profile.nickname ?? "(no nickname)", " ", h("span", { class: "muted" }, m.profile.id)),
      facts([
        ["Joined", time(m.profile.created_at)],
        ["Rating", m.profile.rating_count ? (m.profile.rating_sum / m.profile.rating_count).toFixed(1) + ` (${m.profile.rating_count})` : "—"],
        ["Verification", v ? `${v.status}${v.kind ? " · " + v.kind : ""}` : "none"],
        ...(v
          ? ([
              ["Name", masked(v.name)],
              [v.kind === "enterprise" ? "Credit code" : "ID number", h("span", { "data-testid": "id-number" }, masked(v.number))],
            ] as [string, Node | string][])
          : []),
        ["Audit", may("audit.read") ? h("a", { href: `#/audit?target=${encodeURIComponent("member:" + m.profile.id)}` }, "staff actions on this member") : "—"],
        [
          "Account",
          h(
            "span",
            { "data-testid": "account-state", class: m.suspension ? "overdue" : "" },
            m.suspension ? `suspended ${time(m.suspension.at)} by ${m.suspension.by}: ${m.suspension.reason}` : "active",
          ),
        ],
      ]),
      suspensionForm(m),
      h("h2", null, "Listings (every status)"),
    );
    const listings = h("table", { "data-testid": "member-listings" }, h("thead", null, h("tr", null, ["Title", "Status", "Price", ""].map((c) => h("th", null, c)))));
    const body = h("tbody");
    for (const l of m.listings.items) {
      body.append(
        h(
          "tr",
          null,
          h("td", null, l.title, h("div", { class: "muted" }, l.id)),
          h("td", null, l.status, l.takedown_reason ? h("div", { class: "muted" }, l.takedown_reason) : null),
          h("td", null, yuan(l.price_fen)),
          h("td", null, moderationForms(l.id, l.status, () => void route())),
        ),
      );
    }
    listings.append(body);
    main.append(listings);
    if (m.listings.more) main.append(h("p", { class: "muted" }, "Only the newest 20 are shown."));
    for (const [label, list] of [
      ["Orders as buyer", m.orders_as_buyer],
      ["Orders as seller", m.orders_as_seller],
    ] as const) {
      main.append(
        h("h2", null, label),
        h(
          "table",
          null,
          h("thead", null, h("tr", null, ["Order", "Listing", "Amount", "Status", "Created"].map((c) => h("th", null, c)))),
          h(
            "tbody",
            null,
            list.items.map((o) => h("tr", null, h("td", null, o.order_no ?? o.id), h("td", null, o.listing?.title ?? ""), h("td", null, yuan(o.amount_fen)), h("td", null, o.status), h("td", null, time(o.created_at)))),
          ),
        ),
      );
    }
  },
});

// ---- audit trail -------------------------------------------------------------------------------

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

screen({
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
});

// ---- review queues (media, texts) ----------------------------------------------------------------

for (const queue of reviewQueues) {
  screen({
    path: queue.path,
    title: queue.title,
    nav: true,
    allowed: () => may("review_queue"),
    render: (main) => queue.render(main, { h, form, pagedTable, reasonField, route }),
  });
}

// ---- start -----------------------------------------------------------------------------------

whenNoSession(() => signInScreen());
api.whenSignedOut(() => signInScreen("Signed out."));
window.addEventListener("hashchange", () => void route());
void (async () => {
  if (!(await signInFromRedirect())) await route();
})();
