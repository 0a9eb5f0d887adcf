// The widgets every screen builds with: an error box, a form that reports its call's error, a
// required reason, a list paged with the API's cursors, a member's link, a list of facts.

import { ApiError, may, type Page } from "./api";
import { clear, h } from "./dom";

export function errorBox(e: unknown): HTMLElement {
  if (e instanceof ApiError) return h("p", { class: "error", role: "alert" }, `${e.status} ${e.code}: ${e.message}`);
  return h("p", { class: "error", role: "alert" }, String(e));
}

/** A form whose submit runs `action`, shows its error, and disables itself meanwhile. */
export function form(
  attrs: Record<string, string>,
  fields: (Node | string)[],
  action: (data: FormData) => Promise<void>,
): HTMLFormElement {
  const status = h("div", { class: "form-status" });
  const f = h("form", attrs, ...fields, status);
  f.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(status);
    // Read before disabling: a disabled submitter (the button's name and value) is left out.
    const data = new FormData(f, (event as SubmitEvent).submitter);
    const buttons = f.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action(data);
    } catch (e) {
      status.append(errorBox(e));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return f;
}

/** A required reason: the API audits it with the action. */
export function reasonField(name = "reason", label = "Reason (required, audited)"): HTMLElement {
  return h("label", null, label, h("textarea", { name, required: true, maxlength: 200, rows: 2 }));
}

/**
 * A list that pages with the API's cursors: the first page now, then "More" fetches the next
 * with `next_cursor` until it is null.
 */
export async function pagedTable<T>(
  into: HTMLElement,
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  head: string[],
  row: (item: T) => HTMLTableRowElement,
  empty = "Nothing here.",
): Promise<void> {
  const body = h("tbody");
  const table = h("table", null, h("thead", null, h("tr", null, head.map((c) => h("th", null, c)))), body);
  const more = h("button", { type: "button", class: "more" }, "More");
  const status = h("div");
  into.append(table, status, more);
  let cursor: string | null = null;
  let count = 0;
  const load = async () => {
    more.disabled = true;
    clear(status);
    try {
      const page = await fetchPage(cursor);
      for (const item of page.items) body.append(row(item));
      count += page.items.length;
      cursor = page.next_cursor;
      more.hidden = cursor === null;
      if (count === 0) status.append(h("p", { class: "muted" }, empty));
    } catch (e) {
      status.append(errorBox(e));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => void load());
  await load();
}

export function memberLink(id: string | null | undefined): Node {
  if (!id) return document.createTextNode("—");
  return may("members.read") ? h("a", { href: `#/members/${encodeURIComponent(id)}` }, id) : document.createTextNode(id);
}

export function facts(rows: [string, Node | string | number][]): HTMLElement {
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}
