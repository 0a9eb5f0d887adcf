//! The `wechat-pay-notify` function: WeChat Pay's payment and refund notifications. It verifies
//! (the five headers, the RSA signature over the raw body, the 5-minute window, the APIv3
//! decryption, merchant and app ids), records, and applies exactly once; it calls no provider
//! (a late payment's refund is the jobs'). It holds the APIv3 key and WeChat Pay's public keys,
//! never the merchant private key.
//!
//! WeChat Pay reads the answer: 204 is success (also for a repeat of an applied notification);
//! 4xx/5xx with `{"code":"FAIL","message":…}` makes it retry.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use renji_shared::domain::orders::events::{self, EventKind, Outcome, ProviderEvent};
use renji_shared::domain::orders::payments;
use renji_shared::http::{body_bytes, json_response};
use renji_shared::payments::Provider;
use renji_shared::ratelimit::{serve, Route};
use renji_shared::{App, Error};
use serde_json::json;
use time::OffsetDateTime;

/// The route this function serves; never rate-limited (a provider's retries must get through).
pub const ROUTES: &[Route] = &[Route::unlimited("POST /v1/payments/wechat/notify")];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| notify(app, req)).await
}

fn fail(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({"code": "FAIL", "message": message}))
}

async fn notify(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let now = OffsetDateTime::now_utc();
    let Some(verifier) = app.payments.wechat_notify.as_ref() else {
        return Ok(fail(StatusCode::SERVICE_UNAVAILABLE, "not configured"));
    };
    // A key that cannot be read (or is malformed) is our fault, not the notification's: answer
    // so that WeChat Pay retries, and record nothing against it.
    if let Err(e) = verifier.ready().await {
        tracing::error!(error = %e, "WeChat Pay notification keys unavailable");
        return Ok(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "keys unavailable; retry",
        ));
    }
    let body = match body_bytes(&req, app.config.max_body_bytes) {
        Ok(body) => body,
        Err(_) => return Ok(fail(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
    };
    let notice = match verifier.verify(req.headers(), body, now).await {
        Ok(notice) => notice,
        Err(rejected) => {
            tracing::warn!(reason = %rejected.reason, "WeChat Pay notification rejected");
            let event = ProviderEvent::new(
                Provider::Wechat,
                EventKind::Notification,
                Outcome::Rejected,
                now,
                rejected.reason.as_str(),
            );
            events::record(&app.store, event, now).await;
            return Ok(fail(StatusCode::UNAUTHORIZED, &rejected.reason));
        }
    };
    match payments::apply_notice(app, notice, now).await {
        Ok(Ok(_)) => Ok(Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::Empty)
            .map_err(|e| Error::Internal(e.to_string()))?),
        Ok(Err(rejected)) => Ok(fail(StatusCode::BAD_REQUEST, &rejected.reason)),
        Err(e) => {
            tracing::error!(error = %e, "WeChat Pay notification not applied");
            Ok(fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not applied; retry",
            ))
        }
    }
}
