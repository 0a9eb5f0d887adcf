// The console's shell: the screens (main.ts registers them; this module imports none, so no
// screen module is loaded before it), which the address's hash picks, and the header with the
// navigation the role may open and who is signed in.

import * as api from "./api";
import { clear, h } from "./dom";
import { errorBox } from "./ui";

export const root = document.getElementById("app")!;

export interface Screen {
  /** `#/<path>` with `:param` segments. */
  path: string;
  title: string;
  /** Shown in the navigation when the role may open it. */
  nav?: boolean;
  allowed: () => boolean;
  render: (main: HTMLElement, params: Record<string, string>) => Promise<void> | void;
}

const screens: Screen[] = [];

export function screen(s: Screen): void {
  screens.push(s);
}

export function go(hash: string): void {
  if (location.hash === hash) void route();
  else location.hash = hash;
}

function match(path: string, hash: string): Record<string, string> | null {
  const want = path.split("/");
  const got = hash.replace(/^#/, "").split("?")[0].split("/");
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

export function hashQuery(): URLSearchParams {
  const q = location.hash.split("?")[1];
  return new URLSearchParams(q ?? "");
}

let signInScreen: () => void = () => {};

/** The screen shown while no one is signed in (signin.ts, set by main.ts). */
export function whenNoSession(show: () => void): void {
  signInScreen = show;
}

export async function route(): Promise<void> {
  const session = api.current();
  if (!session) return signInScreen();
  const hash = location.hash || "#/queue";
  let found: Screen | undefined;
  let params: Record<string, string> = {};
  for (const s of screens) {
    const p = match(s.path, hash);
    if (p) {
      found = s;
      params = p;
      break;
    }
  }
  const main = h("main", { id: "main" });
  clear(root);
  root.append(shell(found), main);
  if (!found) {
    main.append(h("p", { class: "error" }, "No such screen."));
    return;
  }
  if (!found.allowed()) {
    main.append(h("p", { class: "error" }, `Your role (${session.staff.role}) cannot open this screen.`));
    return;
  }
  document.title = `${found.title} · Renji console`;
  try {
    await found.render(main, params);
  } catch (e) {
    main.append(errorBox(e));
  }
}

function shell(active: Screen | undefined): HTMLElement {
  const session = api.current()!;
  const nav = h("nav", null);
  for (const s of screens) {
    if (!s.nav || !s.allowed()) continue;
    const href = "#" + s.path;
    nav.append(h("a", { href, class: active === s ? "active" : null }, s.title));
  }
  return h(
    "header",
    null,
    h("strong", null, "Renji 人集 · staff"),
    nav,
    h(
      "span",
      { class: "who" },
      h("span", { "data-testid": "staff-id" }, session.staff.id),
      " ",
      h("span", { class: "role", "data-testid": "role" }, session.staff.role),
      " ",
      h("button", { type: "button", onclick: () => void api.signOut() }, "Sign out"),
    ),
  );
}
