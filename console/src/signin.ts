// Signing in: the sign-in screen (a WeCom login code, or WeCom's web login when the build was
// given its ids) and WeCom's redirect back with the code.

import * as api from "./api";
import { ApiError } from "./api";
import { clear, h } from "./dom";
import { root, route } from "./router";
import { form } from "./ui";

/** WeCom web login (the company's self-built app), when the build was given its ids. */
function wecomConfig(): { corp: string; agent: string } | null {
  const corp = document.querySelector<HTMLMetaElement>('meta[name="renji-wecom-corp-id"]')?.content;
  const agent = document.querySelector<HTMLMetaElement>('meta[name="renji-wecom-agent-id"]')?.content;
  return corp && agent ? { corp, agent } : null;
}

export function signInScreen(message?: string): void {
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
export async function signInFromRedirect(): Promise<boolean> {
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
