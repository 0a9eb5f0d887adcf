//! The port to WeChat's server APIs that need the app's access token: text and image content
//! security (`msgSecCheck` v2, `mediaCheckAsync` v2), subscribe messages and the mini-program's
//! shipping records (`upload_shipping_info`, `get_order`, `is_trade_managed`). The domain sees only this trait; the HTTP adapter
//! (with the access token shared through the store, `super::token`) is `HttpWechatApi`, the
//! local stand-in lives in `local/src/sandbox`.
//! Facts: `../shared/design/wechat-platform.md` §1–§3, §5, §6.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::token::{Fetched, SharedToken};
use crate::config::{Redacted, WechatConfig};
use crate::error::Error;
use crate::secrets::Cached;
use crate::store::DynStore;

/// `scene` of the content checks: what kind of place the content is published in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// 1 资料: a profile (nickname).
    Profile = 1,
    /// 2 评论: a comment (review, reply, ticket message).
    Comment = 2,
    /// 3 论坛: a post (listing title and description, its images).
    Forum = 3,
    /// 4 社交日志.
    Social = 4,
}

/// One `msgSecCheck` v2 request. `openid` is the author's (WeChat needs a member who used the
/// mini-program in the last 2 hours, else 61010).
#[derive(Clone, Debug)]
pub struct TextCheck<'a> {
    pub openid: &'a str,
    pub scene: Scene,
    /// ≤ 2500 characters (WeChat's limit); callers check longer texts in parts.
    pub content: &'a str,
    /// Optional context WeChat accepts alongside (`title`, `nickname`).
    pub title: Option<&'a str>,
    pub nickname: Option<&'a str>,
}

/// WeChat's suggestion (`result.suggest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suggest {
    Pass,
    Review,
    Risky,
}

/// The verdict on a text: suggestion, label (100 = normal, 20001 politics, …) and trace id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextVerdict {
    pub suggest: Suggest,
    pub label: i64,
    pub trace_id: String,
}

/// One `mediaCheckAsync` v2 request for an image (`media_type` 2): WeChat fetches `media_url`
/// (which must stay downloadable for 30 minutes) and pushes the result to the events route.
#[derive(Clone, Debug)]
pub struct ImageCheck<'a> {
    pub openid: &'a str,
    pub scene: Scene,
    pub media_url: &'a str,
}

/// One `/cgi-bin/message/subscribe/send` request (`miniprogram_state` and `lang` come from the
/// adapter's configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    /// In-app page to open, query allowed; `None`: no jump.
    pub page: Option<String>,
    /// `{"thing1": {"value": "…"}, …}`.
    pub data: Value,
}

/// Which payment a shipping record is for (`order_key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShippingOrderKey {
    /// `order_number_type` 2: WeChat Pay's `transaction_id`.
    Transaction(String),
    /// `order_number_type` 1: the merchant id the payment was made to and its `out_trade_no`.
    Merchant { mchid: String, out_trade_no: String },
}

/// One `upload_shipping_info` request for a service (virtual goods, `logistics_type` 3, no
/// tracking number), delivered at once (`delivery_mode` 1, one `shipping_list` item).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippingInfo {
    pub order_key: ShippingOrderKey,
    /// `payer.openid`: the buyer's openid under the mini-program's appid.
    pub payer_openid: String,
    /// `item_desc`: what was sold, ≤ 120 characters (cut here if longer).
    pub item_desc: String,
    /// `upload_time`: sent as RFC 3339 in China time with milliseconds
    /// (`2022-12-15T13:29:35.120+08:00`); an update must carry a newer one.
    pub upload_time: time::OffsetDateTime,
}

/// `item_desc`'s limit (characters).
pub const ITEM_DESC_MAX_CHARS: usize = 120;
/// `logistics_type` 3: virtual goods, no physical delivery (a service).
pub const LOGISTICS_VIRTUAL: i64 = 3;
/// `delivery_mode` 1: UNIFIED_DELIVERY, exactly one `shipping_list` item.
pub const DELIVERY_UNIFIED: i64 = 1;
/// 10060001 "支付单不存在": also answered for a few seconds to a minute after the payment, before
/// WeChat has stored it (community answers by WeChat staff): the caller retries it for a while.
pub const SHIPPING_NOT_FOUND: i64 = 10060001;

/// What WeChat said to a shipping record it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shipped {
    /// Recorded now.
    Now,
    /// WeChat already holds this payment's shipping (10060002 already shipped, 10060003 the one
    /// re-shipping used up): nothing more to send.
    Before(i64),
    /// `get_order` says the payment's shipping is recorded already (an earlier upload whose
    /// answer was lost): nothing sent.
    Found,
}

/// What `/wxa/sec/order/get_order` says of a payment's shipping (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShippingStatus {
    /// Not shipped (`order_state` 1 待发货, `finish_shipping` false).
    NotShipped,
    /// Shipped (`finish_shipping` true or `finish_shipping_count` ≥ 1, or `order_state` 2 已发货,
    /// 3 确认收货, 4 交易完成).
    Shipped,
    /// WeChat knows no such payment (10060001; for a moment after a payment).
    NotFound,
}

/// Reads `get_order`'s `order` object (the shipping fields first: `order_state` 5 已退款 and 6
/// 资金待结算 do not say whether it was shipped).
pub fn shipping_status(order: &Value) -> ShippingStatus {
    let shipping = &order["shipping"];
    let finished = shipping["finish_shipping"].as_bool() == Some(true)
        || shipping["finish_shipping_count"]
            .as_i64()
            .is_some_and(|n| n >= 1);
    match (finished, order["order_state"].as_i64()) {
        (true, _) | (false, Some(2..=4)) => ShippingStatus::Shipped,
        _ => ShippingStatus::NotShipped,
    }
}

/// `upload_time` as WeChat's example writes it: RFC 3339, China time, milliseconds.
pub fn upload_time(at: time::OffsetDateTime) -> String {
    let china = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let at = at.to_offset(china);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+08:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The request body of `upload_shipping_info` (also what the stand-in is checked against).
pub fn shipping_body(info: &ShippingInfo) -> Value {
    let order_key = match &info.order_key {
        ShippingOrderKey::Transaction(id) => json!({
            "order_number_type": 2,
            "transaction_id": id,
        }),
        ShippingOrderKey::Merchant {
            mchid,
            out_trade_no,
        } => json!({
            "order_number_type": 1,
            "mchid": mchid,
            "out_trade_no": out_trade_no,
        }),
    };
    let item_desc: String = info.item_desc.chars().take(ITEM_DESC_MAX_CHARS).collect();
    json!({
        "order_key": order_key,
        "logistics_type": LOGISTICS_VIRTUAL,
        "delivery_mode": DELIVERY_UNIFIED,
        "shipping_list": [{"item_desc": item_desc}],
        "upload_time": upload_time(info.upload_time),
        "payer": {"openid": info.payer_openid},
    })
}

/// Why a call gave no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// 61010: the member has not used the mini-program in the last 2 hours (writing from the app
    /// or the web). Text: treat as `review`; media: keep pending.
    NotRecentlyActive,
    /// 43101: the member has not subscribed (or the one-time grant is spent).
    NotSubscribed,
    /// WeChat refused this request for a reason a retry does not fix (its errcode): a bad
    /// openid (40003), template (40037), data (47003), …
    Refused(i64),
    /// -1, a 5xx, a timeout, a quota (44991/45009/45011), an unreadable answer, a token that
    /// could not be had: retrying later may help.
    Unavailable(String),
    /// The app's own credentials or configuration are wrong (AppID, AppSecret, IP whitelist).
    Misconfigured(i64),
}

impl From<PlatformError> for Error {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Misconfigured(errcode) => Error::Config(format!(
                "WeChat refused this app's configuration (errcode {errcode}): check WECHAT_APPID, \
                 WECHAT_SECRET and the server's IP whitelist"
            )),
            PlatformError::Unavailable(detail) => Error::Unavailable(detail),
            other => Error::Unavailable(format!("WeChat: {other:?}")),
        }
    }
}

#[async_trait]
pub trait WechatApi: Send + Sync {
    /// `msgSecCheck` v2.
    async fn check_text(&self, check: &TextCheck<'_>) -> Result<TextVerdict, PlatformError>;
    /// `mediaCheckAsync` v2 for an image: the trace id the result will be pushed with.
    async fn check_image(&self, check: &ImageCheck<'_>) -> Result<String, PlatformError>;
    /// `subscribe/send`.
    async fn send_subscribe_message(&self, message: &SubscribeMessage)
        -> Result<(), PlatformError>;
    /// `/wxa/sec/order/upload_shipping_info` (§6): the payment's delivery recorded, so WeChat
    /// lets its funds settle. Errors: `Unavailable` (-1, quotas, network: retry), `Refused`
    /// (its errcode; [`SHIPPING_NOT_FOUND`] may be transient), `Misconfigured`.
    /// Stand-ins that do not simulate it keep this default.
    async fn upload_shipping_info(&self, _info: &ShippingInfo) -> Result<Shipped, PlatformError> {
        Err(PlatformError::Unavailable(
            "upload_shipping_info is not available here".into(),
        ))
    }
    /// `/wxa/sec/order/get_order {transaction_id}` (§6): whether the payment's shipping is
    /// recorded — asked before an upload is tried again, so an earlier upload whose answer was
    /// lost does not spend WeChat's one re-shipping.
    async fn shipping_status(
        &self,
        _transaction_id: &str,
    ) -> Result<ShippingStatus, PlatformError> {
        Err(PlatformError::Unavailable(
            "get_order is not available here".into(),
        ))
    }
    /// `/wxa/sec/order/is_trade_managed {appid}` (§6): whether the mini-program is under
    /// shipping management (WeChat holds its payments until shipping is recorded). Adapters may
    /// cache a successful answer for the process.
    async fn is_trade_managed(&self) -> Result<bool, PlatformError> {
        Err(PlatformError::Unavailable(
            "is_trade_managed is not available here".into(),
        ))
    }
}

/// The errcodes that mean the token is not (or no longer) valid.
const TOKEN_ERRCODES: [i64; 3] = [40001, 42001, 40014];
/// The errcodes that blame the app's own configuration: AppID, AppSecret, IP whitelist, a
/// missing credential, an API this app may not use.
const CONFIGURATION_ERRCODES: [i64; 7] = [40002, 40013, 40125, 40164, 41002, 41004, 48001];

/// The reply every WeChat server API shares: `errcode` absent or 0 = success.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// The adapter: HTTPS to `api.weixin.qq.com` (or the sandbox), with the shared access token.
pub struct HttpWechatApi {
    http: OnceLock<reqwest::Client>,
    appid: String,
    api_base: String,
    /// `miniprogram_state` of subscribe messages (`WECHAT_MINIPROGRAM_STATE`).
    miniprogram_state: String,
    secret: Arc<Cached<Redacted>>,
    token: SharedToken,
    /// `is_trade_managed`'s answer, once WeChat gave one (for the process: it changes when the
    /// mini-program's admin is changed, not per request).
    trade_managed: OnceLock<bool>,
}

impl HttpWechatApi {
    pub fn new(
        config: &WechatConfig,
        secret: Arc<Cached<Redacted>>,
        store: DynStore,
        miniprogram_state: &str,
    ) -> Self {
        HttpWechatApi {
            http: OnceLock::new(),
            appid: config.appid.clone(),
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            miniprogram_state: miniprogram_state.to_owned(),
            secret,
            token: SharedToken::new(store, &config.appid),
            trade_managed: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, PlatformError> {
        crate::outbound::client(&self.http).map_err(PlatformError::Unavailable)
    }

    /// POSTs `body` as JSON and reads WeChat's reply (errcode checked by the caller).
    async fn post(&self, path_and_query: &str, body: &Value) -> Result<Reply, PlatformError> {
        let what = path_and_query.split('?').next().unwrap_or(path_and_query);
        let response = self
            .http()?
            .post(format!("{}{path_and_query}", self.api_base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            // The URL holds the access token: never let it into an error message.
            .map_err(|e| PlatformError::Unavailable(format!("{what}: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(PlatformError::Unavailable(format!("{what}: HTTP {status}")));
        }
        let bytes = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| PlatformError::Unavailable(format!("{what}: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| PlatformError::Unavailable(format!("{what}: unreadable reply")))
    }

    /// `stable_token` in normal mode (never `force_refresh`).
    async fn fetch_token(&self) -> Result<Fetched, PlatformError> {
        let secret = self
            .secret
            .get()
            .await
            .map_err(|e| PlatformError::Unavailable(format!("WECHAT_SECRET: {e:?}")))?;
        let body = json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": secret.0,
            "force_refresh": false,
        });
        let reply = self.post("/cgi-bin/stable_token", &body).await?;
        if matches!(reply.errcode, 40001 | 40125) {
            // The AppSecret may have been reset since it was read.
            self.secret.refresh_soon().await;
        }
        if reply.errcode != 0 {
            return Err(classify(reply.errcode, &reply.errmsg));
        }
        let access_token = reply
            .rest
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= 2048)
            .ok_or_else(|| PlatformError::Unavailable("stable_token: no access_token".into()))?;
        let expires_in = reply
            .rest
            .get("expires_in")
            .and_then(Value::as_i64)
            .filter(|s| (1..=7200).contains(s))
            .unwrap_or(300);
        Ok(Fetched {
            access_token: access_token.to_owned(),
            expires_in,
        })
    }

    /// Calls `path` with the shared token; on a token error, expires it (if still the stored
    /// one), fetches again and retries once (as WxJava does).
    async fn call(&self, path: &str, body: &Value) -> Result<Reply, PlatformError> {
        let mut retried = false;
        loop {
            let token = self.token.get(|| self.fetch_token()).await?;
            let reply = self
                .post(&format!("{path}?access_token={}", token.value.0), body)
                .await?;
            if TOKEN_ERRCODES.contains(&reply.errcode) && !retried {
                self.token.expire(&token).await?;
                retried = true;
                continue;
            }
            if reply.errcode != 0 {
                return Err(classify(reply.errcode, &reply.errmsg));
            }
            return Ok(reply);
        }
    }
}

/// What an errcode means for the caller.
fn classify(errcode: i64, errmsg: &str) -> PlatformError {
    // `rid` at the end of errmsg identifies the call at WeChat; the message itself holds no
    // personal data.
    let detail = || {
        format!(
            "errcode {errcode}: {}",
            errmsg.chars().take(200).collect::<String>()
        )
    };
    match errcode {
        61010 => PlatformError::NotRecentlyActive,
        43101 => PlatformError::NotSubscribed,
        c if CONFIGURATION_ERRCODES.contains(&c) => PlatformError::Misconfigured(c),
        -1 | 44991 | 45009 | 45011 | 87020 => PlatformError::Unavailable(detail()),
        c if TOKEN_ERRCODES.contains(&c) => PlatformError::Unavailable(detail()),
        c => PlatformError::Refused(c),
    }
}

/// A label as a number, from a number or a string (live pushes carry `"label":"100"`).
pub fn label(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// `pass` / `review` / `risky` (anything else is treated as `review`: a person looks).
pub fn suggest(value: Option<&Value>) -> Suggest {
    match value.and_then(Value::as_str) {
        Some("pass") => Suggest::Pass,
        Some("risky") => Suggest::Risky,
        _ => Suggest::Review,
    }
}

#[async_trait]
impl WechatApi for HttpWechatApi {
    async fn check_text(&self, check: &TextCheck<'_>) -> Result<TextVerdict, PlatformError> {
        let mut body = json!({
            "content": check.content,
            "version": 2,
            "scene": check.scene as i64,
            "openid": check.openid,
        });
        if let Some(title) = check.title {
            body["title"] = title.into();
        }
        if let Some(nickname) = check.nickname {
            body["nickname"] = nickname.into();
        }
        let reply = self.call("/wxa/msg_sec_check", &body).await?;
        let result = reply.rest.get("result");
        Ok(TextVerdict {
            suggest: suggest(result.and_then(|r| r.get("suggest"))),
            label: label(result.and_then(|r| r.get("label"))),
            trace_id: reply
                .rest
                .get("trace_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    async fn check_image(&self, check: &ImageCheck<'_>) -> Result<String, PlatformError> {
        let body = json!({
            "media_url": check.media_url,
            "media_type": 2,
            "version": 2,
            "scene": check.scene as i64,
            "openid": check.openid,
        });
        let reply = self.call("/wxa/media_check_async", &body).await?;
        reply
            .rest
            .get("trace_id")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| PlatformError::Unavailable("media_check_async: no trace_id".into()))
    }

    async fn send_subscribe_message(
        &self,
        message: &SubscribeMessage,
    ) -> Result<(), PlatformError> {
        let mut body = json!({
            "touser": message.touser,
            "template_id": message.template_id,
            "data": message.data,
            "miniprogram_state": self.miniprogram_state,
            "lang": "zh_CN",
        });
        if let Some(page) = &message.page {
            body["page"] = page.as_str().into();
        }
        self.call("/cgi-bin/message/subscribe/send", &body)
            .await
            .map(|_| ())
    }

    async fn upload_shipping_info(&self, info: &ShippingInfo) -> Result<Shipped, PlatformError> {
        match self
            .call("/wxa/sec/order/upload_shipping_info", &shipping_body(info))
            .await
        {
            Ok(_) => Ok(Shipped::Now),
            // WeChat holds the payment's shipping already: what we owed is done.
            Err(PlatformError::Refused(code @ (10060002 | 10060003))) => Ok(Shipped::Before(code)),
            Err(e) => Err(e),
        }
    }

    async fn shipping_status(&self, transaction_id: &str) -> Result<ShippingStatus, PlatformError> {
        let body = json!({ "transaction_id": transaction_id });
        match self.call("/wxa/sec/order/get_order", &body).await {
            Ok(reply) => Ok(shipping_status(
                reply.rest.get("order").unwrap_or(&Value::Null),
            )),
            Err(PlatformError::Refused(SHIPPING_NOT_FOUND)) => Ok(ShippingStatus::NotFound),
            Err(e) => Err(e),
        }
    }

    async fn is_trade_managed(&self) -> Result<bool, PlatformError> {
        if let Some(known) = self.trade_managed.get() {
            return Ok(*known);
        }
        let body = json!({ "appid": self.appid });
        let reply = self.call("/wxa/sec/order/is_trade_managed", &body).await?;
        let managed = reply
            .rest
            .get("is_trade_managed")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                PlatformError::Unavailable("is_trade_managed: no is_trade_managed".into())
            })?;
        Ok(*self.trade_managed.get_or_init(|| managed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_orders_answer_is_read_by_its_shipping_fields() {
        // The official example's `order` (wechat-platform.md §6, api_getorder).
        let shipped = json!({
            "transaction_id": "fake-transid-20221209132531-44",
            "order_state": 2,
            "in_complaint": false,
            "shipping": {"delivery_mode": 1, "logistics_type": 1, "finish_shipping": true,
                         "finish_shipping_count": 1, "goods_desc": "🍌*1"}
        });
        assert_eq!(shipping_status(&shipped), ShippingStatus::Shipped);
        let waiting = json!({"order_state": 1, "shipping": {"finish_shipping": false,
                             "finish_shipping_count": 0}});
        assert_eq!(shipping_status(&waiting), ShippingStatus::NotShipped);
        // Settlement pending or refunded say nothing of shipping by themselves.
        for state in [5, 6] {
            let order = json!({"order_state": state});
            assert_eq!(shipping_status(&order), ShippingStatus::NotShipped);
        }
        let reshipped = json!({"order_state": 6, "shipping": {"finish_shipping_count": 2}});
        assert_eq!(shipping_status(&reshipped), ShippingStatus::Shipped);
        assert_eq!(shipping_status(&Value::Null), ShippingStatus::NotShipped);
    }
}
