// Renji staff console: a hash-routed single page over the audited staff API (/admin/v1).
// No framework: a handful of forms and tables, built with `h` (dom.ts), keep the bundle small
// and the first paint a single script away.
//
// This entry registers the screens, in the navigation's order, and starts routing. The shell and
// the routing are router.ts, the shared widgets ui.ts; the screens signin.ts, tickets.ts (with
// orders.ts, a dispute's order, and moderation.ts, a reported listing or review), members.ts,
// audit.ts and review.ts (the review queues).

import * as api from "./api";
import { auditTrail } from "./audit";
import { member, memberLookup } from "./members";
import { reviewQueues } from "./review";
import { route, screen, whenNoSession } from "./router";
import { signInFromRedirect, signInScreen } from "./signin";
import { ticket, ticketQueue } from "./tickets";

for (const s of [ticketQueue, ticket, memberLookup, member, auditTrail, ...reviewQueues]) screen(s);

whenNoSession(() => signInScreen());
api.whenSignedOut(() => signInScreen("Signed out."));
window.addEventListener("hashchange", () => void route());
void (async () => {
  if (!(await signInFromRedirect())) await route();
})();
