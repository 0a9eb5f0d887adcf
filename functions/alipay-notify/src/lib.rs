//! The `alipay-notify` function: Alipay's asynchronous notifications (a form POST). It verifies
//! (RSA2 over the decoded parameters, app and seller ids, the exact amount), records, and applies
//! exactly once; it calls no provider. It holds Alipay's public key only.
//!
//! Alipay reads the answer: exactly the text `success`; anything else makes it retry.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use renji_shared::domain::orders::events::{self, EventKind, Outcome, ProviderEvent};
use renji_shared::domain::orders::payments;
use renji_shared::http::body_bytes;
use renji_shared::payments::Provider;
use renji_shared::ratelimit::{serve, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The route this function serves; never rate-limited (a provider's retries must get through).
pub const ROUTES: &[Route] = &[Route::unlimited("POST /v1/payments/alipay/notify")];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| notify(app, req)).await
}

fn text(status: StatusCode, text: &str) -> Result<Response<Body>, Error> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::Text(text.to_owned()))
        .map_err(|e| Error::Internal(e.to_string()))
}

async fn notify(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let now = OffsetDateTime::now_utc();
    let Some(verifier) = app.payments.alipay_notify.as_ref() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "fail");
    };
    let Ok(body) = body_bytes(&req, app.config.max_body_bytes) else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "fail");
    };
    let notice = match verifier.verify(body) {
        Ok(notice) => notice,
        Err(rejected) => {
            tracing::warn!(reason = %rejected.reason, "Alipay notification rejected");
            let event = ProviderEvent::new(
                Provider::Alipay,
                EventKind::Notification,
                Outcome::Rejected,
                now,
                rejected.reason.as_str(),
            );
            events::record(&app.store, event, now).await;
            return text(StatusCode::BAD_REQUEST, "fail");
        }
    };
    match payments::apply_notice(app, notice, now).await {
        Ok(Ok(_)) => text(StatusCode::OK, "success"),
        Ok(Err(_)) => text(StatusCode::BAD_REQUEST, "fail"),
        Err(e) => {
            tracing::error!(error = %e, "Alipay notification not applied");
            text(StatusCode::INTERNAL_SERVER_ERROR, "fail")
        }
    }
}
