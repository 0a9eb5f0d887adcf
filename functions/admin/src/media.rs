//! The staff's media queue (`domain::media::review`): videos awaiting a decision and images
//! whose check never came back, and the decision on one. Moderation: moderator or admin.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::media::review::{self, DecisionBody};
use renji_shared::http::{id_param, json_body, ok, PageRequest};
use renji_shared::ids::MediaId;
use renji_shared::{App, Error};
use time::OffsetDateTime;

pub const QUEUE: &str = "GET /admin/v1/moderation/media";
pub const DECISION: &str = "POST /admin/v1/moderation/media/{id}/decision";

/// Whether this module serves the route.
pub fn serves(key: &str) -> bool {
    key == QUEUE || key == DECISION
}

pub async fn route(app: &App, req: Request, key: &str) -> Result<Response<Body>, Error> {
    let now = OffsetDateTime::now_utc();
    match key {
        QUEUE => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let (items, next) = review::queue(app, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        DECISION => {
            let id = id_param(&req, "id", MediaId::parse, "media")?;
            let (decision, reason) =
                json_body::<DecisionBody>(&req, app.config.max_body_bytes)?.check()?;
            ok(&review::decide(app, &id, decision, &reason, now).await?)
        }
        _ => Err(Error::NotFound("route")),
    }
}
