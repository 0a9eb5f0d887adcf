//! Handler CPU time per warm request, without store I/O: each call's event is parsed by
//! lambda_http and run through its handler over a zero-latency in-memory store, on a
//! single-threaded runtime, timed with the thread's CPU clock (so time the thread spends
//! descheduled by a busy machine is not counted). Login still calls the sandbox WeChat, which
//! runs on another thread: its figure includes that HTTP exchange (client side, with the
//! loopback TCP and wake-up work the kernel charges to the caller), measured alone on the
//! last row; the target is judged on the routes without outside I/O.

use std::sync::Arc;
use std::time::Duration;

use renji_shared::store::DynStore;
use serde_json::{json, Value};

use crate::events::RouteEvent;
use crate::fixture::{self, Sandboxes};
use crate::memstore::MemStore;
use crate::requests::{calls, event_of};
use crate::stats::{percentile, us};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

async fn measure(
    routes: Vec<RouteEvent>,
    sandboxes: Sandboxes,
    iterations: usize,
) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let warmup = iterations / 10;
    for call in calls(&routes) {
        // Each call on a store of its own: what earlier calls created (thousands of listings)
        // would otherwise slow the stub's unindexed queries and be counted as handler time.
        let store: DynStore = Arc::new(MemStore::default());
        let app = fixture::app(store, "renji", &sandboxes)?;
        let member = fixture::login(&app, &routes, &sandboxes).await?;
        let mut samples = Vec::with_capacity(iterations);
        for n in 0..warmup + iterations {
            // Making the event (a fresh session for logout) is not timed.
            let event = event_of(&call, &app, &member, n).await?.to_string();
            let start = thread_cpu();
            let status = if call.route.is_scheduled() {
                match renji_local::functions::run_job(&call.route.function, &app).await {
                    Some(Ok(_)) => 200,
                    Some(Err(e)) => return Err(format!("{}: {e}", call.route.route)),
                    None => return Err("no such scheduled function".into()),
                }
            } else {
                let req = lambda_http::request::from_str(&event)
                    .map_err(|e| format!("{}: {e}", call.route.name))?;
                let response = renji_local::functions::invoke(&call.route.function, &app, req)
                    .await
                    .ok_or("no such function")?;
                response.status().as_u16()
            };
            let spent = thread_cpu().saturating_sub(start);
            if !(200..300).contains(&status) {
                return Err(format!(
                    "{} ({}) answered {status}",
                    call.route.route, call.variant
                ));
            }
            if n >= warmup {
                samples.push(spent);
            }
        }
        // Login calls WeChat, a staff sign-in WeCom, a submission the identity verifier: their
        // figures include that HTTP exchange, which is I/O too.
        let note = match (call.route.route.as_str(), call.variant) {
            ("POST /v1/auth/wechat", _) => "includes the WeChat exchange (last row)",
            ("POST /v1/me/verification", _) => "includes the exchange with the identity verifier",
            ("POST /admin/v1/auth/wecom", _) => "includes the WeCom exchange (code → userid)",
            _ => provider_exchange(&call.route.route, call.variant),
        };
        rows.push(json!({
            "route": call.route.route,
            "call": call.variant,
            "iterations": iterations,
            "p50_us": us(percentile(&samples, 50.0)),
            "p99_us": us(percentile(&samples, 99.0)),
            "outside_io": !note.is_empty(),
            "note": note,
        }));
    }
    // The WeChat exchange alone (its HTTP client's side), the part of login's figure that is
    // I/O with WeChat rather than the handler's own work.
    let app = fixture::app(Arc::new(MemStore::default()), "renji", &sandboxes)?;
    let wechat = app.wechat.as_ref().ok_or("no WeChat client")?;
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..warmup + iterations {
        let start = thread_cpu();
        wechat
            .code_to_session("sandbox:alice")
            .await
            .map_err(|e| format!("sandbox WeChat: {e:?}"))?;
        if n >= warmup {
            samples.push(thread_cpu().saturating_sub(start));
        }
    }
    rows.push(json!({
        "route": "(WeChat jscode2session exchange, client side)",
        "call": "part of login",
        "iterations": iterations,
        "p50_us": us(percentile(&samples, 50.0)),
        "p99_us": us(percentile(&samples, 99.0)),
        "outside_io": true,
        "note": "I/O, not handler work: loopback HTTP to the sandbox, whose kernel and scheduler work is charged to the caller's thread",
    }));
    rows.extend(provider_exchanges(&app, &sandboxes, iterations).await?);
    Ok(rows)
}

/// A new 24-character order number (as ours are), for a trade of its own at a stand-in.
fn order_no() -> String {
    ulid::Ulid::new().to_string()[..24].to_owned()
}

/// Each provider call a money route makes, alone (our client's side: building and signing the
/// request, checking the answer's signature, loopback HTTP), so the rows above can be read
/// without it. The stand-in's own work runs on another thread and is not counted.
async fn provider_exchanges(
    app: &renji_shared::App,
    sandboxes: &Sandboxes,
    iterations: usize,
) -> Result<Vec<Value>, String> {
    use renji_shared::money::Fen;
    use renji_shared::payments::{Channel, Gateway, PaymentStart, RefundRequest};
    let wechat: &dyn Gateway = app
        .payments
        .wechat
        .as_deref()
        .ok_or("no WeChat Pay gateway")?;
    let alipay: &dyn Gateway = app.payments.alipay.as_deref().ok_or("no Alipay gateway")?;
    let start = |channel, order_no: &str| PaymentStart {
        channel,
        order_no: order_no.to_owned(),
        description: "婚礼跟拍".into(),
        amount: Fen::from_fen(880),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
        payer_openid: Some("bench-openid".into()),
        prepay_id: None,
    };
    // A trade paid at the stand-in, as a refund finds it (each refund its own: a repeated
    // refund number is answered differently, Alipay's with a second call to query it).
    let http = reqwest::Client::new();
    let http = &http;
    let paid_trade = |gateway: &'static str| async move {
        let (gateway, channel, base) = match gateway {
            "wechat" => (wechat, Channel::Wechat, &sandboxes.wechatpay_base),
            _ => (alipay, Channel::Alipay, &sandboxes.alipay_base),
        };
        let no = order_no();
        let started = gateway
            .start(&start(channel, &no))
            .await
            .map_err(|e| e.to_string())?;
        crate::pay::pay_at_stand_in(http, base, channel, &no, &started.client).await?;
        Ok::<_, String>(RefundRequest {
            out_refund_no: format!("{no}R01"),
            order_no: no,
            amount: Fen::from_fen(880),
            total: Fen::from_fen(880),
            refunded_before: Fen::from_fen(0),
            reason: "退款".into(),
            royalty_back: None,
        })
    };
    let warmup = iterations / 10;
    let mut rows = Vec::new();
    for (name, part) in [
        (
            "(WeChat Pay JSAPI order, client side)",
            "part of payments (wechat)",
        ),
        (
            "(WeChat Pay close + query, client side)",
            "part of cancel (unpaid)",
        ),
        (
            "(WeChat Pay refund, client side)",
            "part of the WeChat Pay refunds",
        ),
        ("(Alipay refund, client side)", "part of the Alipay refunds"),
    ] {
        let mut samples = Vec::with_capacity(iterations);
        for n in 0..warmup + iterations {
            let fresh = order_no();
            let refund = match part {
                "part of the WeChat Pay refunds" => Some(paid_trade("wechat").await?),
                "part of the Alipay refunds" => Some(paid_trade("alipay").await?),
                "part of cancel (unpaid)" => {
                    wechat
                        .start(&start(Channel::Wechat, &fresh))
                        .await
                        .map_err(|e| e.to_string())?;
                    None
                }
                _ => None,
            };
            let begin = thread_cpu();
            let done = match (part, &refund) {
                ("part of payments (wechat)", _) => wechat
                    .start(&start(Channel::Wechat, &fresh))
                    .await
                    .map(|_| ()),
                ("part of cancel (unpaid)", _) => match wechat.close(&fresh).await {
                    Ok(()) => wechat.query(&fresh).await.map(|_| ()),
                    Err(e) => Err(e),
                },
                ("part of the WeChat Pay refunds", Some(r)) => wechat.refund(r).await.map(|_| ()),
                (_, Some(r)) => alipay.refund(r).await.map(|_| ()),
                (_, None) => Ok(()),
            };
            let spent = thread_cpu().saturating_sub(begin);
            done.map_err(|e| format!("{name}: {e}"))?;
            if n >= warmup {
                samples.push(spent);
            }
        }
        rows.push(json!({
            "route": name,
            "call": part,
            "iterations": iterations,
            "p50_us": us(percentile(&samples, 50.0)),
            "p99_us": us(percentile(&samples, 99.0)),
            "outside_io": true,
            "note": "the provider call alone: signing the request, checking the signed answer, loopback HTTP (the stand-in's own work is on another thread)",
        }));
    }
    Ok(rows)
}

/// What a money call exchanges with a provider's stand-in (its figure includes our side of that
/// HTTP exchange: signing the request, checking the answer's signature, loopback I/O; the
/// stand-in's own work runs on another thread and is not counted), or `""`.
fn provider_exchange(route: &str, variant: &str) -> &'static str {
    match (route, variant) {
        ("POST /v1/orders/{id}/payments", "wechat") => {
            "includes the JSAPI order exchange with the WeChat Pay stand-in"
        }
        ("POST /v1/orders/{id}/cancel", v) if v.starts_with("unpaid") => {
            "includes closing and querying the payment at the WeChat Pay stand-in"
        }
        ("POST /v1/orders/{id}/cancel", _) => {
            "includes the refund exchange with the Alipay stand-in"
        }
        ("POST /v1/orders/{id}/decline", _) => {
            "includes the refund exchange with the WeChat Pay stand-in"
        }
        ("POST /v1/orders/{id}/refund/approve", v) if v.starts_with("Alipay") => {
            "includes the refund exchange with the Alipay stand-in"
        }
        ("POST /v1/orders/{id}/refund/approve", _) => {
            "includes the refund exchange with the WeChat Pay stand-in"
        }
        ("POST /admin/v1/orders/{id}/decision", v) if v.starts_with("refund") => {
            "includes the refund exchange with the WeChat Pay stand-in"
        }
        ("SCHEDULE order-jobs", v) if v.starts_with("a lost") => {
            "includes the query exchange with the WeChat Pay stand-in"
        }
        _ => "",
    }
}

/// Runs the measurement on its own thread and runtime (the caller's runtime keeps serving the
/// sandbox WeChat).
pub async fn handler_cpu(
    routes: &[RouteEvent],
    sandboxes: &Sandboxes,
    iterations: usize,
) -> Result<Vec<Value>, String> {
    let routes = routes.to_vec();
    let sandboxes = sandboxes.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(measure(routes, sandboxes, iterations))
    });
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the handler CPU thread panicked".to_string())?
}
