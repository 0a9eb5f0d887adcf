// An order as staff see it, and its panel on an order or dispute ticket: the timeline and, while
// disputed, the two decisions (refund, all or an amount, or release; a reason required).

import * as api from "./api";
import { may } from "./api";
import { h, time, yuan } from "./dom";
import { go } from "./router";
import { facts, form, memberLink, reasonField } from "./ui";

export interface Order {
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

/** A dispute's order: its timeline and the two decisions. */
export function orderPanel(o: Order, ticketId: string): HTMLElement {
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
          go(`#/tickets/${encodeURIComponent(ticketId)}`);
        },
      ),
    );
  }
  return panel;
}
