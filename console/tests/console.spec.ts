// The staff console in Chromium against the local server: sign in, work a ticket to closed,
// decide a dispute, take a listing down and see its owner's view change; roles offer only their
// actions; the audit trail shows what was done.
import { expect, test, type Page } from "@playwright/test";
import { api, login, seed, sellerWithListing, type Seed } from "./seed";

const shots = process.env.RENJI_SCREENSHOTS === "1";
let data: Seed;

async function shot(page: Page, name: string) {
  if (shots) await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}

/** Opens the console (at `hash`) and signs in: the session is in memory, so every page load asks. */
async function signIn(page: Page, code: string, hash = "") {
  await page.goto(`/console/${hash}`);
  await page.getByLabel(/WeCom login code/).fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("role")).toBeVisible();
}

test.describe.configure({ mode: "serial" });

test.beforeAll(async () => {
  data = await seed(String(Date.now()));
});

test("support signs in, sees the queue with the privacy clock, answers and closes a privacy request", async ({ page }) => {
  await signIn(page, "staff:sam:support");
  await expect(page.getByTestId("role")).toHaveText("support");
  // The session is in memory only.
  expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
  // Support has no audit screen and no moderation.
  await expect(page.getByRole("link", { name: "Audit" })).toHaveCount(0);
  await expect(page.getByTestId("ticket-row").first()).toBeVisible();
  const privacyRow = page.getByTestId("ticket-row").filter({ hasText: "查询我的个人信息" });
  await expect(privacyRow).toContainText("day 1/15");
  await shot(page, "queue");

  await privacyRow.getByRole("link").click();
  await expect(page.getByTestId("ticket-status")).toHaveText("open");
  await page.getByTestId("reply").getByRole("textbox").fill("您好，我们保存的信息清单已整理，见下条回复。");
  await page.getByRole("button", { name: "Send reply" }).click();
  await expect(page.getByTestId("history")).toContainText("我们保存的信息清单已整理");
  await shot(page, "ticket");
  await page.getByTestId("close").getByRole("textbox").fill("已答复保存的个人信息清单");
  await page.getByRole("button", { name: "Close ticket" }).click();
  await expect(page.getByTestId("ticket-status")).toHaveText("closed");
  await expect(page.getByTestId("resolution")).toHaveText("已答复保存的个人信息清单");
  // The member sees it closed, with the resolution.
  const mine = await api.get(`/v1/tickets/${data.privacyTicket}`, data.buyer);
  expect(mine.status).toBe("closed");
});

test("support decides a dispute: the order's timeline, a partial refund", async ({ page }) => {
  await signIn(page, "staff:sam:support", `#/tickets/${data.disputeTicket}`);
  await expect(page.getByTestId("order-status")).toHaveText("disputed");
  await expect(page.getByTestId("timeline")).toContainText("refund_requested");
  await shot(page, "dispute");
  page.once("dialog", (d) => void d.accept());
  await page.getByLabel(/Refund amount/).fill("440");
  await page.getByTestId("decision").getByLabel(/Reason/).fill("迟到两小时，退一半");
  await page.getByRole("button", { name: "Refund buyer" }).click();
  await expect(page.getByTestId("order-status")).not.toHaveText("disputed");
  await expect
    .poll(async () => (await api.get(`/v1/orders/${data.orderId}`, data.buyer)).refunded_fen, { timeout: 10_000 })
    .toBe(44000);
});

test("a moderator takes the reported listing down and the owner sees it taken down; no ticket answers", async ({ page }) => {
  await signIn(page, "staff:mia:moderator");
  await expect(page.getByTestId("role")).toHaveText("moderator");
  await expect(page.getByRole("link", { name: "Audit" })).toHaveCount(0);
  await page.getByRole("link", { name: "商品图片含联系方式" }).click();
  await expect(page.getByTestId("listing-status")).toHaveText("published");
  // A moderator reads tickets but neither answers nor closes them.
  await expect(page.getByTestId("reply")).toHaveCount(0);
  await expect(page.getByTestId("close")).toHaveCount(0);
  // The reason is required: an empty one is not sent.
  await page.getByTestId("takedown").getByRole("button", { name: "Take down" }).click();
  expect((await api.get(`/v1/listings/${data.listingId}`)).status).toBe("published");
  await page.getByTestId("takedown").getByLabel(/reason/).fill("图片含联系方式，引导站外交易");
  await shot(page, "takedown");
  await page.getByTestId("takedown").getByRole("button", { name: "Take down" }).click();
  await expect(page.getByTestId("listing-status")).toContainText("not public");
  const owners = await api.get(`/v1/listings/${data.listingId}`, data.seller);
  expect(owners.status).toBe("taken_down");
  expect(owners.takedown_reason).toBe("图片含联系方式，引导站外交易");

  // The owner's record, from the member screen: restore with a reason.
  await page.getByRole("link", { name: owners.owner_id }).first().click();
  await expect(page.getByTestId("member-listings")).toContainText("taken_down");
  await expect(page.getByTestId("id-number")).toContainText("*");
  await expect(page.locator("body")).not.toContainText("11010519491231002X");
  await shot(page, "member");
  await page.getByTestId("restore").getByLabel(/reason/).fill("已删除联系方式");
  await page.getByTestId("restore").getByRole("button", { name: "Restore" }).click();
  await expect(page.getByTestId("member-listings")).toContainText("published");
  expect((await api.get(`/v1/listings/${data.listingId}`)).status).toBe("published");
});

test("an admin reads the audit trail of those actions, page by page", async ({ page }) => {
  await signIn(page, "staff:ada:admin");
  await page.getByRole("link", { name: "Audit" }).click();
  await expect(page.getByTestId("audit-row").first()).toBeVisible();
  await page.getByLabel("Target").fill(`listing:${data.listingId}`);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByTestId("audit-row").filter({ hasText: "takedown" })).toHaveCount(1);
  await expect(page.getByTestId("audit-row").filter({ hasText: "restore" })).toHaveCount(1);
  await shot(page, "audit");
  // Every list pages with the API's cursors: two at a time here.
  // A reload: the session was in memory only, so it asks again.
  await page.reload();
  await page.goto("/console/#/audit?limit=2");
  await page.getByLabel(/WeCom login code/).fill("staff:ada:admin");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("audit-row")).toHaveCount(2);
  await page.getByRole("button", { name: "More" }).click();
  await expect(page.getByTestId("audit-row")).toHaveCount(4);
  // Signing out ends the session on the server too.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByTestId("signin")).toBeVisible();
});

test("an overdue privacy request leads the queue, in red, past its 15 days", async ({ page }) => {
  // No seeded ticket can be 15 days old: the queue's answer is replaced by one holding an overdue
  // privacy request first (as the API orders them, earliest due first) and a fresh one after.
  const day = 86_400_000;
  const ticket = (id: string, subject: string, filedDaysAgo: number, overdue: boolean) => ({
    id,
    kind: "privacy",
    subject,
    status: "open",
    due_at: new Date(Date.now() - (filedDaysAgo - 15) * day).toISOString(),
    overdue,
    overdue_at: overdue ? new Date().toISOString() : null,
    created_at: new Date(Date.now() - filedDaysAgo * day).toISOString(),
    updated_at: new Date().toISOString(),
    author_id: "u_01m8me9mabm9h6xc039f9rf1ma",
    order_id: null,
    listing_id: null,
    user_id: null,
    review_id: null,
    messages_count: 1,
  });
  await page.route(/\/admin\/v1\/tickets\?/, (route) =>
    route.fulfill({
      json: { items: [ticket("t_old", "删除我的账号", 17, true), ticket("t_new", "更正我的昵称", 1, false)], next_cursor: null },
    }),
  );
  await signIn(page, "staff:sam:support");
  const rows = page.getByTestId("ticket-row");
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toHaveClass(/overdue-row/);
  await expect(rows.first()).toContainText("overdue 2 d");
  await expect(rows.first()).toContainText("day 18/15");
  await expect(rows.nth(1)).not.toHaveClass(/overdue-row/);
  await expect(rows.nth(1)).toContainText("due in 14 d");
  await expect(page.getByRole("button", { name: "More" })).toBeHidden();
});

test("a moderator approves a held listing title in the text review queue, and others can read the listing", async ({ page }) => {
  // The WeChat stand-in sends a text holding `sandbox-review` to review: the listing is stored,
  // published, but hidden from everyone else until staff decide.
  const title = `婚礼跟拍 sandbox-review ${Date.now()}`;
  const held = await api.post("/v1/listings", data.seller, {
    kind: "service",
    title,
    description: "半天跟拍，含精修 30 张",
    category: "photography",
    city: "北京市",
    price_fen: 50000,
    status: "published",
  });
  await expect(api.get(`/v1/listings/${held.id}`, data.buyer)).rejects.toThrow(/ 404 /);

  await signIn(page, "staff:mia:moderator");
  await page.getByRole("link", { name: "Text review" }).click();
  const row = page.getByTestId("text-row").filter({ hasText: held.id });
  await expect(row).toContainText(title);
  await expect(row).toContainText("21000");
  // The reason is required: an empty one is not sent.
  await row.getByRole("button", { name: "Approve" }).click();
  await expect(api.get(`/v1/listings/${held.id}`, data.buyer)).rejects.toThrow(/ 404 /);
  await row.getByLabel(/Reason/).fill("正常摄影服务，无违规");
  await shot(page, "review-texts");
  await row.getByRole("button", { name: "Approve" }).click();
  await expect(row.getByTestId("decided")).toHaveText("approved: public");
  const seen = await api.get(`/v1/listings/${held.id}`, data.buyer);
  expect(seen.title).toBe(title);
  // The media queue opens for a moderator too (nothing seeded waits in it).
  await page.getByRole("link", { name: "Media review" }).click();
  await expect(page.getByRole("heading", { name: "Media review" })).toBeVisible();
});

test("the media review queue links the preview out (new tab, http(s) only) and sends the decision with its reason", async ({ page }) => {
  // No seeded upload waits for staff (a video needs the S3 stand-in's upload): the queue's answer
  // is replaced, and the decision's request caught.
  const item = (id: string, preview_url: string) => ({
    id,
    owner_id: "u_01m8me9mabm9h6xc039f9rf1ma",
    purpose: "listing_video",
    content_type: "video/mp4",
    size: 2_400_000,
    status: "checking",
    waiting_for: "video",
    media_url: `https://media.example/u/x/${id}.mp4`,
    preview_url,
    cover_id: null,
    approved_by_staff: false,
    used_by: [{ kind: "listing", id: "l_01m8me9mabm9h6xc039f9rf1mb" }],
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
  });
  const ok = "m_01m8me9mabm9h6xc039f9rf1mc";
  await page.route(/\/admin\/v1\/moderation\/media\?/, (route) =>
    route.fulfill({ json: { items: [item(ok, "https://bucket.example/u/x/v.mp4?X-Amz-Signature=1"), item("m_01m8me9mabm9h6xc039f9rf1md", "javascript:alert(1)")], next_cursor: null } }),
  );
  let sent: any = null;
  await page.route(/\/admin\/v1\/moderation\/media\/.*\/decision$/, (route) => {
    sent = { url: route.request().url(), body: route.request().postDataJSON() };
    return route.fulfill({ json: { ...item(ok, ""), status: "rejected", reason: "含联系方式" } });
  });
  await signIn(page, "staff:ada:admin", "#/review/media");
  const rows = page.getByTestId("media-row");
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toContainText("a video (WeChat checks none)");
  await expect(rows.first()).toContainText("listing l_01m8me9mabm9h6xc039f9rf1mb");
  const preview = rows.first().getByTestId("preview");
  await expect(preview).toHaveAttribute("target", "_blank");
  await expect(preview).toHaveAttribute("rel", "noopener noreferrer");
  await expect(rows.nth(1).getByTestId("preview")).toHaveCount(0);
  await expect(page.locator("main video, main img, main iframe")).toHaveCount(0);
  await rows.first().getByLabel(/Reason/).fill("含联系方式");
  await shot(page, "review-media");
  await rows.first().getByRole("button", { name: "Reject" }).click();
  await expect(rows.first().getByTestId("decided")).toHaveText("rejected: removed");
  expect(sent.url).toContain(`/admin/v1/moderation/media/${ok}/decision`);
  expect(sent.body).toEqual({ decision: "reject", reason: "含联系方式" });
});

test("support sees no review queue", async ({ page }) => {
  await signIn(page, "staff:sam:support", "#/review/texts");
  await expect(page.getByRole("link", { name: /review/i })).toHaveCount(0);
  await expect(page.locator("main .error")).toContainText("Your role (support) cannot open this screen.");
  await expect(page.getByTestId("text-row")).toHaveCount(0);
  // The server refuses it too: the console holds no privilege of its own.
  const staff = await api.post("/admin/v1/auth/wecom", undefined, { code: "staff:sam:support" });
  await expect(api.get("/admin/v1/moderation/texts", staff.token)).rejects.toThrow(/ 403 /);
});

test("a moderator suspends a member: their listing leaves the feed, their session and sign-in are refused; restore brings it back", async ({ page }) => {
  const name = `console-suspended-${Date.now()}`;
  const member = await sellerWithListing(name, "可疑跟拍服务");
  const inFeed = async () => (await api.get(`/v1/users/${member.id}/listings`)).items.map((l: any) => l.id);
  expect(await inFeed()).toEqual([member.listingId]);

  // Support looks members up but is not offered suspension.
  await signIn(page, "staff:sam:support", `#/members/${member.id}`);
  await expect(page.getByTestId("account-state")).toHaveText("active");
  await expect(page.getByTestId("member-suspend")).toHaveCount(0);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByTestId("signin")).toBeVisible();

  await signIn(page, "staff:mia:moderator", `#/members/${member.id}`);
  await expect(page.getByTestId("account-state")).toHaveText("active");
  const suspend = page.getByTestId("member-suspend");
  // The reason is required: an empty one is not sent.
  await suspend.getByRole("button", { name: "Suspend account" }).click();
  expect((await api.get(`/v1/users/${member.id}`)).unavailable).toBe(false);
  await suspend.getByLabel(/reason/).fill("多次发布引导站外交易的信息");
  await suspend.getByRole("button", { name: "Suspend account" }).click();
  await expect(page.getByTestId("account-state")).toContainText("suspended");
  await expect(page.getByTestId("account-state")).toContainText("mia: 多次发布引导站外交易的信息");
  await expect(page.getByTestId("member-listings")).toContainText("taken_down");

  // Others no longer see the listing or the profile; the member's session and sign-in are refused.
  expect(await inFeed()).toEqual([]);
  await expect(api.get(`/v1/listings/${member.listingId}`)).rejects.toThrow(/ 404 /);
  const profile = await api.get(`/v1/users/${member.id}`);
  expect([profile.unavailable, profile.nickname]).toEqual([true, null]);
  await expect(api.get("/v1/me", member.token)).rejects.toThrow(/ 401 /);
  await expect(login(name)).rejects.toThrow(/ 403 .*account_suspended/);

  // Restored with a reason: the listing is back in the feed, and the member may sign in again.
  const restore = page.getByTestId("member-restore");
  await restore.getByLabel(/reason/).fill("申诉通过，已整改");
  await shot(page, "suspend");
  await restore.getByRole("button", { name: "Restore account" }).click();
  await expect(page.getByTestId("account-state")).toHaveText("active");
  await expect(page.getByTestId("member-listings")).toContainText("published");
  expect(await inFeed()).toEqual([member.listingId]);
  expect((await api.get(`/v1/listings/${member.listingId}`)).status).toBe("published");
  const token = await login(name);
  expect((await api.get("/v1/me", token)).id).toBe(member.id);
});

test("a moderator works a real queued video: the media job queued it, approval makes it public on the listing", async ({ page }) => {
  // Seeded first (beforeAll): the media job confirms the uploads once their forms expire (60 s).
  test.setTimeout(120_000);
  const staff = (await api.post("/admin/v1/auth/wecom", undefined, { code: "staff:mia:moderator" })).token;
  const queued = async () => (await api.get("/admin/v1/moderation/media?limit=100", staff)).items.map((m: any) => m.id);
  await expect.poll(queued, { timeout: 100_000, intervals: [2_000] }).toContain(data.video.mediaId);
  // Others see the listing without its video until staff approve it; the cover passes its check.
  expect((await api.get(`/v1/listings/${data.video.listingId}`)).video_url).toBeNull();
  await expect
    .poll(async () => (await api.get(`/v1/listings/${data.video.listingId}`, data.video.owner)).media_states[data.video.coverUrl] ?? null, {
      timeout: 30_000,
    })
    .toBeNull();

  await signIn(page, "staff:mia:moderator", "#/review/media");
  const row = page.locator(`[data-testid="media-row"][data-id="${data.video.mediaId}"]`);
  await expect(row).toContainText("a video (WeChat checks none)");
  await expect(row).toContainText(`listing ${data.video.listingId}`);
  await expect(row.getByTestId("preview")).toHaveAttribute("href", /^http:\/\/127\.0\.0\.1:\d+\/local\/media\//);
  // The preview is the owner-only object through a short signed link, which works.
  const href = (await row.getByTestId("preview").getAttribute("href"))!;
  expect((await fetch(href)).status).toBe(200);
  await expect(page.locator("main video, main img, main iframe")).toHaveCount(0);
  // The reason is required: an empty one is not sent.
  await row.getByRole("button", { name: "Approve" }).click();
  expect(await queued()).toContain(data.video.mediaId);
  await row.getByLabel(/Reason/).fill("婚礼样片，无违规内容");
  await row.getByRole("button", { name: "Approve" }).click();
  await expect(row.getByTestId("decided")).toHaveText("approved: public");
  // Public now: the listing shows its video to everyone, and the object is served.
  await expect.poll(async () => (await api.get(`/v1/listings/${data.video.listingId}`)).video_url).toBe(data.video.mediaUrl);
  expect((await fetch(data.video.mediaUrl)).status).toBe(200);
  expect(await queued()).not.toContain(data.video.mediaId);
});
