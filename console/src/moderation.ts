// Moderating what members published: a listing's take-down and restore (on a reported listing's
// panel and in its owner's record) and a reported review's hide, each with a required reason.

import * as api from "./api";
import { ApiError, may } from "./api";
import { h, yuan } from "./dom";
import { route } from "./router";
import { facts, form, memberLink, reasonField } from "./ui";

export interface Listing {
  id: string;
  owner_id: string;
  kind: string;
  title: string;
  city: string;
  price_fen: number;
  status: string;
  takedown_reason?: string | null;
}

export function moderationForms(listingId: string, status: string | null, after: () => void): HTMLElement {
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
export async function listingPanel(id: string): Promise<HTMLElement> {
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

export function reviewPanel(id: string): HTMLElement {
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
