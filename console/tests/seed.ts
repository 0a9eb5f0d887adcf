// Seeds the local server through its API (as the mini-program would): a verified seller with a
// published listing, a buyer with a disputed order (paid through the sandbox WeChat Pay), a
// privacy request and a report of the listing.
import { readFileSync } from "node:fs";

export const base = process.env.RENJI_BASE ?? "http://127.0.0.1:3000";

async function call(method: string, path: string, token?: string, body?: unknown, url = base): Promise<any> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export const api = {
  get: (path: string, token?: string) => call("GET", path, token),
  post: (path: string, token?: string, body?: unknown) => call("POST", path, token, body),
};

export async function login(name: string): Promise<string> {
  return (await api.post("/v1/auth/wechat", undefined, { code: `sandbox:${name}` })).token;
}

export interface Seed {
  seller: string;
  buyer: string;
  listingId: string;
  orderId: string;
  disputeTicket: string;
  privacyTicket: string;
  reportTicket: string;
  /** A listing with a real video upload that the media job puts in the staff queue. */
  video: { owner: string; listingId: string; mediaId: string; mediaUrl: string; coverUrl: string };
}

/**
 * An upload as the mini-program makes one: the form (`POST /v1/uploads`), then the file posted to
 * the form's `url` (the local server's bucket stand-in), the fields first and the file last.
 */
export async function upload(token: string, purpose: string, contentType: string, bytes: Uint8Array): Promise<{ media_id: string; media_url: string }> {
  const form = await api.post("/v1/uploads", token, { purpose, content_type: contentType, size: bytes.length });
  const body = new FormData();
  for (const [k, v] of Object.entries(form.fields as Record<string, string>)) body.append(k, v);
  body.append("file", new Blob([bytes], { type: contentType }), "file");
  const response = await fetch(form.url, { method: "POST", body });
  if (response.status !== 204) throw new Error(`upload of ${purpose}: ${response.status} ${await response.text()}`);
  return form;
}

export async function seed(tag: string): Promise<Seed> {
  const sandbox = JSON.parse(readFileSync(process.env.RENJI_SANDBOX!, "utf8"));
  const seller = await login(`console-seller-${tag}`);
  const buyer = await login(`console-buyer-${tag}`);
  await call("PATCH", "/v1/me", seller, { nickname: "光影工作室" });
  await call("PATCH", "/v1/me", buyer, { nickname: "小林" });
  await api.post("/v1/me/verification", seller, { kind: "person", real_name: "张三", id_number: "11010519491231002X" });
  // A priced service is published only by a seller with a payout account: their own WeChat one.
  await call("PUT", "/v1/me/payout-accounts/wechat", seller, {});
  const listing = await api.post("/v1/listings", seller, {
    kind: "service",
    title: "婚礼跟拍（全天）",
    description: "全天跟拍，含精修 80 张",
    category: "photography",
    city: "北京市",
    price_fen: 88000,
    status: "published",
  });
  // A disputed order: paid, accepted, refund asked and declined, then the buyer's dispute.
  const order = await api.post("/v1/orders", buyer, { listing_id: listing.id, quantity: 1, remark: "周六上午" });
  await api.post(`/v1/orders/${order.id}/payments`, buyer, { channel: "wechat" });
  await call("POST", "/sandbox/pay", undefined, { out_trade_no: order.id }, sandbox.wechatpay);
  for (let i = 0; i < 50; i++) {
    if ((await api.get(`/v1/orders/${order.id}`, buyer)).status === "paid") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await api.post(`/v1/orders/${order.id}/accept`, seller);
  await api.post(`/v1/orders/${order.id}/refund`, buyer, { reason: "摄影师迟到两小时" });
  await api.post(`/v1/orders/${order.id}/refund/decline`, seller, { reason: "已按时到场" });
  const dispute = await api.post("/v1/tickets", buyer, {
    kind: "dispute",
    subject: "摄影师迟到两小时",
    text: "约定上午十点，十二点才到",
    order_id: order.id,
  });
  await api.post(`/v1/tickets/${dispute.id}/messages`, seller, { text: "路上堵车，已补拍" });
  const privacy = await api.post("/v1/tickets", buyer, {
    kind: "privacy",
    subject: "查询我的个人信息",
    text: "请告诉我你们保存了我的哪些个人信息",
  });
  const report = await api.post("/v1/tickets", buyer, {
    kind: "report",
    subject: "商品图片含联系方式",
    text: "图片里有微信号，引导站外交易",
    listing_id: listing.id,
  });
  // A listing with a video and its cover, uploaded first so that the media job (every 5 s, once
  // the upload forms have expired: 60 s here) has confirmed them by the last test: the cover
  // passes the sandbox image check, the video waits for staff (WeChat checks no video).
  // Its own seller, so the seeded seller's listings stay the reported one alone.
  const videographer = await login(`console-videographer-${tag}`);
  await api.post("/v1/me/verification", videographer, { kind: "person", real_name: "王五", id_number: "11010519850512456X" });
  await call("PUT", "/v1/me/payout-accounts/wechat", videographer, {});
  const bytes = (text: string) => new TextEncoder().encode(text);
  const video = await upload(videographer, "listing_video", "video/mp4", bytes("sandbox video bytes"));
  const cover = await upload(videographer, "video_cover", "image/jpeg", bytes("sandbox cover bytes"));
  const withVideo = await api.post("/v1/listings", videographer, {
    kind: "service",
    title: "婚礼跟拍（视频样片）",
    description: "样片见视频",
    category: "photography",
    city: "北京市",
    price_fen: 99000,
    status: "published",
    video_url: video.media_url,
    video_cover_url: cover.media_url,
  });
  return {
    video: { owner: videographer, listingId: withVideo.id, mediaId: video.media_id, mediaUrl: video.media_url, coverUrl: cover.media_url },
    seller,
    buyer,
    listingId: listing.id,
    orderId: order.id,
    disputeTicket: dispute.id,
    privacyTicket: privacy.id,
    reportTicket: report.id,
  };
}

/** A verified member `name` with one published listing: their token, id and the listing's id. */
export async function sellerWithListing(name: string, title: string): Promise<{ token: string; id: string; listingId: string }> {
  const token = await login(name);
  await call("PATCH", "/v1/me", token, { nickname: "速拍小王" });
  await api.post("/v1/me/verification", token, { kind: "person", real_name: "李四", id_number: "110105199003071239" });
  await call("PUT", "/v1/me/payout-accounts/wechat", token, {});
  const me = await api.get("/v1/me", token);
  const listing = await api.post("/v1/listings", token, {
    kind: "service",
    title,
    description: "半天跟拍，含精修 30 张",
    category: "photography",
    city: "北京市",
    price_fen: 60000,
    status: "published",
  });
  return { token, id: me.id, listingId: listing.id };
}
