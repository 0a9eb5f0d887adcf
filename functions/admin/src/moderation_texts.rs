//! The staff text queue (`domain::moderation::texts`): texts WeChat's check sent to a person,
//! oldest first, and staff's decision on each (moderator or admin; the edge audits the call
//! with its reason).

use lambda_http::{Body, Request, Response};
use renji_shared::domain::moderation::texts::{self, DecisionBody};
use renji_shared::http::{id_param, json_body, ok, only_params, PageRequest};
use renji_shared::staff;
use renji_shared::{App, Error};
use time::OffsetDateTime;

const QUEUE: &str = "GET /admin/v1/moderation/texts";
const DECISION: &str = "POST /admin/v1/moderation/texts/{id}/decision";

/// Whether `key` is one of this module's routes.
pub fn serves(key: &str) -> bool {
    key == QUEUE || key == DECISION
}

pub async fn route(
    app: &App,
    req: &Request,
    key: &str,
    now: OffsetDateTime,
) -> Result<Response<Body>, Error> {
    match key {
        QUEUE => {
            only_params(req, &["limit", "cursor"])?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(req, keys.cursors())?;
            let (items, next) = texts::queue(&app.store, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        _ => {
            let id = id_param(
                req,
                "id",
                |t| texts::parse_id(t).map(|_| t.to_owned()),
                "held text",
            )?;
            let body: DecisionBody = json_body(req, app.config.max_body_bytes)?;
            let caller = staff::caller(req)?;
            ok(&texts::decide(&app.store, &id, &caller.id, &body, now).await?)
        }
    }
}
