// Members: look one up by id, and a member's record (the verification masked, the account's state
// with suspend / restore, listings in every status with take-down and restore, orders).

import * as api from "./api";
import { may } from "./api";
import { h, masked, time, yuan } from "./dom";
import { type Listing, moderationForms } from "./moderation";
import type { Order } from "./orders";
import { go, route, type Screen } from "./router";
import { facts, form, reasonField } from "./ui";

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

export const memberLookup: Screen = {
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
};

export const member: Screen = {
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
};
