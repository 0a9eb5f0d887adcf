// The staff review queues (media, texts): one entry per queue, each a screen in the console's
// navigation for the roles that moderate (`review_queue`: moderator and admin; the server checks
// the role again). Text nodes only: what a member wrote, and every link the API returns, stays
// text or a plain link.

import * as api from "./api";
import { may } from "./api";
import { h, time } from "./dom";
import type { Screen } from "./router";
import { form, memberLink, pagedTable, reasonField } from "./ui";

/** `QueuedMedia` (openapi.yaml). */
interface QueuedMedia {
  id: string;
  owner_id: string;
  purpose: string;
  content_type: string;
  size: number;
  status: string;
  waiting_for: string | null;
  media_url: string;
  preview_url: string;
  cover_id: string | null;
  approved_by_staff: boolean;
  used_by: { kind: string; id?: string; member?: string }[];
  created_at: string;
}

/** `HeldText` (openapi.yaml). */
interface HeldText {
  id: string;
  author_id: string;
  subject: { kind: string; listing_id?: string; review_id?: string; ticket_id?: string; message_id?: string };
  texts: { field: string; text: string }[];
  scene: number;
  label: number | null;
  category: string | null;
  held_at: string;
  decided: { decision: string; reason: string; staff_id: string; at: string; applied: boolean } | null;
}

const WAITING: Record<string, string> = {
  video: "a video (WeChat checks none)",
  timeout: "the check never came back",
  review: "WeChat was not sure",
  not_recently_active: "owner not active in the mini-program (61010)",
  download_failed: "WeChat could not download it",
  check_failed: "the check failed",
  check_refused: "the check was refused",
  no_openid: "owner has no openid",
};

/** `?limit=` in the address sets the page size, as on the other lists. */
function limit(fallback: string): string {
  return new URLSearchParams(location.hash.split("?")[1] ?? "").get("limit") ?? fallback;
}

/**
 * The private object's signed link: opened in a new tab (no opener, no referrer), never embedded
 * in the console; anything but http(s) is not linked at all.
 */
function previewLink(url: string, label: string): Node | string {
  let parsed: URL;
  try {
    parsed = new URL(url, location.href);
  } catch {
    return "—";
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "—";
  return h("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer", "data-testid": "preview" }, label);
}

/**
 * Approve / reject with a required reason; once decided the row says what was done instead of
 * offering it again (the queue itself is read afresh on the next visit).
 */
function decisionCell(path: string, describe: (result: any, decision: string) => string): HTMLTableCellElement {
  const cell = h("td", { class: "decide" });
  cell.append(
    form(
      { class: "stack", "data-testid": "decide" },
      [
        reasonField("reason"),
        h(
          "div",
          { class: "row" },
          h("button", { type: "submit", name: "decision", value: "approve" }, "Approve"),
          h("button", { type: "submit", name: "decision", value: "reject", class: "danger" }, "Reject"),
        ),
      ],
      async (data) => {
        const decision = String(data.get("decision"));
        const result = await api.post<any>(path, { decision, reason: String(data.get("reason")).trim() });
        cell.replaceChildren(h("span", { class: `badge ${decision}`, "data-testid": "decided" }, describe(result, decision)));
      },
    ),
  );
  return cell;
}

function usedBy(used: QueuedMedia["used_by"]): Node | string {
  if (!used.length) return h("span", { class: "muted" }, "not used yet");
  return h(
    "ul",
    { class: "plain" },
    used.map((u) => h("li", null, u.kind === "avatar" ? ["avatar of ", memberLink(u.member)] : u.kind === "ticket" ? ["ticket ", h("a", { href: `#/tickets/${encodeURIComponent(u.id ?? "")}` }, u.id ?? "")] : `${u.kind} ${u.id ?? ""}`)),
  );
}

function belongsTo(s: HeldText["subject"], author: string): Node | (Node | string)[] | string {
  switch (s.kind) {
    case "listing":
      return `listing ${s.listing_id ?? ""}`;
    case "nickname":
      return ["nickname of ", memberLink(author)];
    case "review":
      return `review ${s.review_id ?? ""}`;
    case "reply":
      return `seller's reply to review ${s.review_id ?? ""}`;
    case "ticket_message":
      return ["a message on ticket ", h("a", { href: `#/tickets/${encodeURIComponent(s.ticket_id ?? "")}` }, s.ticket_id ?? "")];
    default:
      return s.kind;
  }
}

const mediaQueue: Screen = {
  path: "/review/media",
  title: "Media review",
  nav: true,
  allowed: () => may("review_queue"),
  render: async (main) => {
    main.append(
      h("h1", null, "Media review"),
      h(
        "p",
        { class: "muted" },
        "Videos awaiting a decision and images whose check did not settle, oldest upload first. The preview opens the private upload in a new tab (its link lasts 10 minutes: reload the queue for a fresh one). Approve makes it public where it is used; reject removes it there, and its owner sees the reason.",
      ),
    );
    await pagedTable<QueuedMedia>(
      main,
      (cursor) => api.get(`/admin/v1/moderation/media${api.query({ cursor, limit: limit("25") })}`),
      ["Uploaded", "Owner", "Purpose", "Waiting for", "Preview", "Used by", "Decision"],
      (m) =>
        h(
          "tr",
          { "data-testid": "media-row", "data-id": m.id },
          h("td", null, time(m.created_at)),
          h("td", null, memberLink(m.owner_id)),
          h("td", null, m.purpose, h("div", { class: "muted" }, `${m.content_type} · ${Math.ceil(m.size / 1024)} KiB`)),
          h(
            "td",
            null,
            m.waiting_for ? WAITING[m.waiting_for] ?? m.waiting_for : "—",
            m.approved_by_staff ? h("div", { class: "muted" }, "approved; its cover is still being checked") : null,
          ),
          h("td", null, previewLink(m.preview_url, m.purpose === "listing_video" ? "open video" : "open image")),
          h("td", null, usedBy(m.used_by)),
          decisionCell(`/admin/v1/moderation/media/${encodeURIComponent(m.id)}/decision`, (r, d) =>
            d === "approve" ? (r?.status === "passed" ? "approved: public" : "approved: waits for its cover's check") : "rejected: removed",
          ),
        ),
      "No uploads wait for staff.",
    );
  },
};

const textQueue: Screen = {
  path: "/review/texts",
  title: "Text review",
  nav: true,
  allowed: () => may("review_queue"),
  render: async (main) => {
    main.append(
      h("h1", null, "Text review"),
      h(
        "p",
        { class: "muted" },
        "Texts WeChat's check sent to staff (or could not judge), oldest first, hidden from everyone but their author until decided. Approve makes them public; reject keeps them hidden and the author sees the reason.",
      ),
    );
    await pagedTable<HeldText>(
      main,
      (cursor) => api.get(`/admin/v1/moderation/texts${api.query({ cursor, limit: limit("25") })}`),
      ["Held", "Author", "Belongs to", "Text", "Label", "Decision"],
      (t) =>
        h(
          "tr",
          { "data-testid": "text-row", "data-id": t.id },
          h("td", null, time(t.held_at)),
          h("td", null, memberLink(t.author_id)),
          h("td", null, belongsTo(t.subject, t.author_id)),
          h(
            "td",
            null,
            h(
              "dl",
              { class: "facts" },
              t.texts.flatMap((x) => [h("dt", null, x.field), h("dd", { class: "text" }, x.text)]),
            ),
          ),
          h("td", null, t.label === null ? "—" : String(t.label), t.category ? h("div", { class: "muted" }, t.category) : null),
          t.decided
            ? h("td", null, h("span", { class: "badge", "data-testid": "decided" }, `${t.decided.decision}d by ${t.decided.staff_id}: ${t.decided.reason}`))
            : decisionCell(`/admin/v1/moderation/texts/${encodeURIComponent(t.id)}/decision`, (_r, d) =>
                d === "approve" ? "approved: public" : "rejected: stays hidden",
              ),
        ),
      "No texts wait for staff.",
    );
  },
};

export const reviewQueues: Screen[] = [textQueue, mediaQueue];
