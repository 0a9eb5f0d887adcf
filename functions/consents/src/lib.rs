//! The `consents` function: the member's consents to the policy documents, the optional
//! processing they may grant and withdraw, and a minor's guardian's consent (privacy policy §四(四),
//! §六, §七). It holds the PII keys, to seal the guardian's details.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::consents::{self, ConsentBody, GuardianBody, Scope};
use renji_shared::domain::members::Member;
use renji_shared::http::{
    created, json_body, no_body, no_content, ok, only_params, path_param, route_key,
};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::store::{keys, Record};
use renji_shared::{App, Error};

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    // The member's own record, read as GET /v1/me is: not limited.
    Route::member("GET /v1/me/consents", Class::Browse),
    Route::member("POST /v1/me/consents", Class::Write),
    Route::member("DELETE /v1/me/consents/{scope}", Class::Write),
    Route::member("POST /v1/me/guardian-consent", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

/// The caller's session and member record, read together (one request).
async fn me(app: &App, req: &Request) -> Result<Member, Error> {
    let (_, member) = app
        .authenticate_with(req, |me| keys::member(&me.user_id))
        .await?;
    Member::from_item(member.ok_or(Error::NotFound("member"))?)
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let store = &app.store;
    let limit = app.config.max_body_bytes;
    let current = &app.config.policy_versions;
    let keep = app.config.audit_keep;
    match route_key(&req) {
        Some("GET /v1/me/consents") => {
            let member = me(app, &req).await?;
            only_params(&req, &[])?;
            ok(&consents::view(&member, current))
        }
        Some("POST /v1/me/consents") => {
            let mut member = me(app, &req).await?;
            only_params(&req, &[])?;
            let body: ConsentBody = json_body(&req, limit)?;
            let consent = body.validate(current)?;
            let new = consents::give(store, &mut member, consent, keep).await?;
            let view = consents::view(&member, current);
            match new {
                true => created(&view),
                false => ok(&view),
            }
        }
        Some("DELETE /v1/me/consents/{scope}") => {
            let member = me(app, &req).await?;
            only_params(&req, &[])?;
            no_body(&req, limit)?;
            // An unknown scope is a resource that does not exist, as an unknown id is.
            let scope =
                Scope::parse(&path_param(&req, "scope")?).ok_or(Error::NotFound("scope"))?;
            consents::withdraw(store, &member, scope, keep).await?;
            no_content()
        }
        Some("POST /v1/me/guardian-consent") => {
            let member = me(app, &req).await?;
            only_params(&req, &[])?;
            let body: GuardianBody = json_body(&req, limit)?;
            let details = body.validate()?;
            // The keys before anything is written (a 503 when they cannot be read).
            let ring = app.pii().await?;
            consents::record_guardian(store, &ring, &member, details, keep).await?;
            no_content()
        }
        _ => Err(Error::NotFound("route")),
    }
}
