//! The Lambda functions this server hosts, by their logical id in `template.yaml`.

use lambda_http::{Body, Request, Response};
use renji_shared::ratelimit::Route;
use renji_shared::{App, Error};
use serde_json::Value;

/// Each function's logical id and the routes its handler serves.
pub const FUNCTIONS: &[(&str, &[Route])] = &[
    ("AuthFunction", renji_auth::ROUTES),
    ("UsersFunction", renji_users::ROUTES),
    ("ListingsFunction", renji_listings::ROUTES),
    ("FavoritesFunction", renji_favorites::ROUTES),
    ("OrdersFunction", renji_orders::ROUTES),
    ("ReviewsFunction", renji_reviews::ROUTES),
    ("VerificationFunction", renji_verification::ROUTES),
    ("PaymentsFunction", renji_payments::ROUTES),
    ("WechatPayNotifyFunction", renji_wechat_pay_notify::ROUTES),
    ("AlipayNotifyFunction", renji_alipay_notify::ROUTES),
    ("ImFunction", renji_im::ROUTES),
    ("MediaFunction", renji_media::ROUTES),
    ("TicketsFunction", renji_tickets::ROUTES),
    ("AdminFunction", renji_admin::ROUTES),
    ("ConsentsFunction", renji_consents::ROUTES),
    ("ExportsFunction", renji_exports::ROUTES),
    ("DeletionFunction", renji_deletion::ROUTES),
    ("NotificationsFunction", renji_notifications::ROUTES),
    ("WechatEventsFunction", renji_wechat_events::ROUTES),
];

/// Runs the function's handler, as its Lambda would; `None` for an unknown function.
pub async fn invoke(function: &str, app: &App, req: Request) -> Option<Response<Body>> {
    Some(match function {
        "AuthFunction" => renji_auth::handle(app, req).await,
        "UsersFunction" => renji_users::handle(app, req).await,
        "ListingsFunction" => renji_listings::handle(app, req).await,
        "FavoritesFunction" => renji_favorites::handle(app, req).await,
        "OrdersFunction" => renji_orders::handle(app, req).await,
        "ReviewsFunction" => renji_reviews::handle(app, req).await,
        "VerificationFunction" => renji_verification::handle(app, req).await,
        "PaymentsFunction" => renji_payments::handle(app, req).await,
        "WechatPayNotifyFunction" => renji_wechat_pay_notify::handle(app, req).await,
        "AlipayNotifyFunction" => renji_alipay_notify::handle(app, req).await,
        "ImFunction" => renji_im::handle(app, req).await,
        "MediaFunction" => renji_media::handle(app, req).await,
        "TicketsFunction" => renji_tickets::handle(app, req).await,
        "AdminFunction" => renji_admin::handle(app, req).await,
        "ConsentsFunction" => renji_consents::handle(app, req).await,
        "ExportsFunction" => renji_exports::handle(app, req).await,
        "DeletionFunction" => renji_deletion::handle(app, req).await,
        "NotificationsFunction" => renji_notifications::handle(app, req).await,
        "WechatEventsFunction" => renji_wechat_events::handle(app, req).await,
        _ => return None,
    })
}

/// The scheduled functions (a `Schedule` event in `template.yaml`), run by this server's timer.
pub const JOBS: &[&str] = &[
    "VerificationJobsFunction",
    "OrderJobsFunction",
    "ExportJobsFunction",
    "DeletionJobsFunction",
    "NotificationJobsFunction",
    "MediaJobsFunction",
];

/// Runs one scheduled function once, as its schedule would; `None` for an unknown function.
pub async fn run_job(function: &str, app: &App) -> Option<Result<Value, Error>> {
    run_job_at(function, app, time::OffsetDateTime::now_utc()).await
}

/// [`run_job`] with the clock at `now` (the local server's `POST /sandbox/clock`): the order
/// jobs run at it (expiry, completion, the sellers' splits and their deadlines), and the
/// notification jobs (the messages those write are due at it); the other jobs keep the real
/// time.
pub async fn run_job_at(
    function: &str,
    app: &App,
    now: time::OffsetDateTime,
) -> Option<Result<Value, Error>> {
    Some(match function {
        "VerificationJobsFunction" => renji_verification_jobs::run(app).await,
        "OrderJobsFunction" => renji_order_jobs::run_at(app, now).await,
        "ExportJobsFunction" => renji_export_jobs::run(app).await,
        "DeletionJobsFunction" => renji_deletion_jobs::run(app).await,
        "NotificationJobsFunction" => renji_notification_jobs::run_at(app, now).await,
        "MediaJobsFunction" => renji_media_jobs::run(app).await,
        _ => return None,
    })
}
