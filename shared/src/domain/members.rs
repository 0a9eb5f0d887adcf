//! Members: created on first WeChat login (one per openid, even when two first logins race),
//! their profile, and the two views of it — the owner's and the public one.
//!
//! Store layout ([`keys::member`], [`keys::openid`]): `USER#<id> / PROFILE` holds the member;
//! `OPENID#<openid> / OPENID` claims the openid for exactly one member (written in the same
//! transaction, conditioned on absence).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::consents::{self, Accepted, PolicyVersions};
use super::media::attach::{self, Wanted};
use super::media::{Hold, Holds, Purpose, Subject as MediaSubject};
use super::moderation::texts::{self, Decision, Subject};
use super::moderation::{self as moderation, TextHold};
use super::profile::{patch_field, today, AvatarUrl, BirthDate, Gender, Nickname, Residence};
use crate::error::Error;
use crate::ids::UserId;
use crate::store::{keys, Condition, DynStore, Record, Records, StoreError, Write};
use crate::wechat::api::{Scene, WechatApi};
use crate::wechat::WechatIdentity;

/// The claim of an openid by the member who first logged in with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenidClaim {
    pub user_id: UserId,
}

impl Record for OpenidClaim {
    const KIND: &'static str = "openid claim";
}

/// Who a verified member was verified as: the badge others see, never the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifiedAs {
    Person,
    Enterprise,
}

/// A member as stored. `openid`/`unionid` identify them to WeChat and are never shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: UserId,
    /// Empty once the account is being deleted (the claim is released at once).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub openid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// The approved nickname: what others see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<Nickname>,
    /// A new nickname held for staff (`domain::moderation`; the text is its `pending`): others
    /// keep seeing `nickname` until it is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname_review: Option<TextHold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<AvatarUrl>,
    /// The avatar while others may not see it yet, or any more (`domain::media`): absent, shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: Holds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence: Option<Residence>,
    /// Set by real-name verification; publishing requires it (privacy policy §二(一)2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifiedAs>,
    #[serde(default)]
    pub followers_count: i64,
    #[serde(default)]
    pub following_count: i64,
    #[serde(default)]
    pub listings_count: i64,
    /// The sum of the ratings of the visible reviews this member received as a seller, and
    /// their number (`domain::reviews` moves both in each review's transaction; clients divide).
    #[serde(default)]
    pub rating_sum: i64,
    #[serde(default)]
    pub rating_count: i64,
    /// The last acceptance of each policy document (`domain::consents`): the summary `GET /v1/me`
    /// reads; each acceptance is also a record of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_privacy_policy: Option<Accepted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_terms: Option<Accepted>,
    /// When each optional scope was granted, while it is (`consents::allows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_personalization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_marketing: Option<String>,
    /// Set when verified as a person: the age comes from the identity number, not the profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub age_checked: bool,
    /// For a member verified while under 14 only: the day they turn 14 (`YYYY-MM-DD`). Neither
    /// the number nor the birth date is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_until: Option<String>,
    /// When a guardian's consent was recorded (a minor may then publish and buy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_consent_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The account deletion (`domain::deletion`): who asked, when, the anonymous reference; set
    /// when it starts, kept in the tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<crate::domain::deletion::Deletion>,
    /// [`DELETING_CHECKING`] while a deletion request checks what blocks it, [`DELETING`] from
    /// its start on (the tombstone keeps it): every write that makes the member a party
    /// (an order, a follow, a block) is conditioned on its absence ([`active`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<i64>,
    /// Staff suspended the account (`domain::suspension`): no sign-in, no session, its public
    /// listings hidden and its profile shown as unavailable, until staff restore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
}

/// A suspension as stored on the member: when, who and why. Shown to staff only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// RFC 3339 UTC.
    pub at: String,
    pub by: crate::ids::StaffId,
    pub reason: String,
}

/// The `deleting` marker while a deletion request checks its blockers.
pub const DELETING_CHECKING: i64 = 1;
/// The `deleting` marker from the start of a deletion on.
pub const DELETING: i64 = 2;

/// The member exists and no deletion of theirs has begun: the condition of every write that
/// makes them a party to something new (an order, a follow, a block), so nothing new names a
/// member whose deletion the job is completing.
pub fn active() -> Condition {
    Condition::All(vec![
        Condition::Present,
        Condition::Under("deleting".into(), DELETING_CHECKING),
    ])
}

/// The member exists and no deletion of theirs has started (one may be checking what blocks it,
/// and may be refused): the condition of a follow or a block, which the deletion job, running
/// only once started, finds and removes — unlike an order, which would block the deletion.
pub fn not_deleted() -> Condition {
    Condition::All(vec![
        Condition::Present,
        Condition::Under("deleting".into(), DELETING),
    ])
}

/// The label of [`not_suspended`].
pub const NOT_SUSPENDED_LABEL: &str = "member_not_suspended";

/// The member exists and is not suspended: the condition a login's transaction puts on the
/// member, so a login racing a suspension either lands first (and its session is revoked by
/// the suspension) or fails.
pub fn not_suspended() -> Condition {
    Condition::All(vec![
        Condition::Present,
        Condition::Lacks("suspension".into()),
    ])
}

/// 403 `account_suspended`: what a suspended member is answered when signing in or acting.
pub fn account_suspended() -> Error {
    Error::Denied {
        code: "account_suspended",
        message: "this account is suspended by Renji staff; contact customer service".into(),
    }
}

pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// A time as stored and shown: RFC 3339 UTC, whole seconds.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl Member {
    /// A new member with an empty profile.
    pub fn new(id: UserId, identity: &WechatIdentity) -> Self {
        let now = now_rfc3339();
        Member {
            id,
            openid: identity.openid.clone(),
            unionid: identity.unionid.clone(),
            nickname: None,
            nickname_review: None,
            avatar_url: None,
            holds: Holds::new(),
            gender: None,
            birth_date: None,
            residence: None,
            verified: None,
            followers_count: 0,
            following_count: 0,
            listings_count: 0,
            rating_sum: 0,
            rating_count: 0,
            consent_privacy_policy: None,
            consent_terms: None,
            scope_location: None,
            scope_personalization: None,
            scope_marketing: None,
            age_checked: false,
            minor_until: None,
            guardian_consent_at: None,
            created_at: now.clone(),
            updated_at: now,
            deletion: None,
            deleting: None,
            suspension: None,
        }
    }

    /// The owner's view (`GET /v1/me`): everything but the WeChat identifiers, with the policy
    /// documents to accept again (`current`: `RENJI_POLICY_VERSIONS`) and whether a guardian's
    /// consent is needed.
    pub fn private_view(&self, current: &PolicyVersions) -> Value {
        json!({
            "consent_required": consents::required(self, current),
            "guardian_consent_required": consents::guardian_consent_required(self, today()),
            "id": self.id,
            "nickname": self.own_nickname(),
            "nickname_review": self.nickname_review.as_ref().map(TextHold::owner_view),
            "avatar_url": self.avatar_url,
            "media_states": attach::states(&self.holds),
            "gender": self.gender,
            "birth_date": self.birth_date,
            "residence": self.residence,
            "verified": self.verified,
            "followers_count": self.followers_count,
            "following_count": self.following_count,
            "listings_count": self.listings_count,
            "rating_sum": self.rating_sum,
            "rating_count": self.rating_count,
            "created_at": self.created_at,
        })
    }

    /// What anyone may see (`GET /v1/users/{id}`): nickname and avatar are the only public
    /// personal fields (privacy policy §二(一)2). A suspended member's profile is `unavailable`:
    /// neither is shown.
    pub fn public_view(&self) -> Value {
        let mut view = self.profile_view();
        if self.suspension.is_some() {
            view["nickname"] = Value::Null;
            view["avatar_url"] = Value::Null;
        }
        view
    }

    /// The public fields, shown whatever the member's state (staff's look-up).
    pub fn profile_view(&self) -> Value {
        json!({
            "unavailable": self.suspension.is_some(),
            "id": self.id,
            "nickname": self.nickname,
            "avatar_url": self.public_avatar(),
            "verified": self.verified,
            "followers_count": self.followers_count,
            "following_count": self.following_count,
            "listings_count": self.listings_count,
            "rating_sum": self.rating_sum,
            "rating_count": self.rating_count,
        })
    }
}

impl Member {
    /// The nickname as its owner sees it: the one held for staff, else the approved one.
    pub fn own_nickname(&self) -> Option<&str> {
        self.nickname_review
            .as_ref()
            .and_then(|h| h.pending.as_deref())
            .or(self.nickname.as_ref().map(Nickname::as_str))
    }

    /// The avatar as others see it: none while it is held (`domain::media`).
    pub fn public_avatar(&self) -> Option<&AvatarUrl> {
        self.avatar_url
            .as_ref()
            .filter(|a| !self.holds.contains_key(a.as_str()))
    }
}
impl Record for Member {
    const KIND: &'static str = "member";
}

/// The member, unless their account is deleted or its deletion has started (then `None`: a 404
/// for everyone else, as if gone); a deletion request still checking what blocks it hides nothing.
pub async fn get(store: &DynStore, id: &UserId) -> Result<Option<Member>, Error> {
    Ok(get_any(store, id)
        .await?
        .filter(|m| m.deletion.is_none() && m.deleting.unwrap_or(0) < DELETING))
}

/// The member record whatever its state, a deletion's tombstone included.
pub async fn get_any(store: &DynStore, id: &UserId) -> Result<Option<Member>, Error> {
    store.get_record(&keys::member(id)).await
}

/// The member behind a WeChat identity, created on first login as `new_id` together with
/// `with` (the first session). Returns `(member, new_user)`.
///
/// Creation claims the openid with a conditional write in the same transaction as the member,
/// so two racing first logins make one member: the loser reads the winner's.
pub async fn find_or_create(
    store: &DynStore,
    identity: &WechatIdentity,
    new_id: UserId,
    with: Vec<Write>,
) -> Result<(Member, bool), Error> {
    let (member, new_user, pending) =
        find_or_create_deferred(store, identity, new_id, with).await?;
    if !pending.is_empty() {
        store.transact(pending).await?;
    }
    Ok((member, new_user))
}

/// As [`find_or_create`], but a returning member's change (a unionid WeChat sends for the first
/// time) is returned as writes for the caller's own transaction (a login's session and audit
/// record), not written.
pub async fn find_or_create_deferred(
    store: &DynStore,
    identity: &WechatIdentity,
    new_id: UserId,
    with: Vec<Write>,
) -> Result<(Member, bool, Vec<Write>), Error> {
    if let Some((member, pending)) = by_openid(store, identity).await? {
        return Ok((member, false, pending));
    }
    let member = Member::new(new_id, identity);
    let claim = OpenidClaim {
        user_id: member.id.clone(),
    };
    let mut writes = vec![
        Write::put_if(
            claim.to_item(keys::openid(&identity.openid), None)?,
            Condition::Absent,
            "openid_unclaimed",
        ),
        Write::put_if(
            member.to_item(keys::member(&member.id), None)?,
            Condition::Absent,
            "member_new",
        ),
    ];
    writes.extend(with);
    let created = store.transact(writes).await;
    match created {
        Ok(()) => Ok((member, true, Vec::new())),
        Err(StoreError::ConditionFailed {
            label: "openid_unclaimed",
        }) => by_openid(store, identity)
            .await?
            .map(|(m, pending)| (m, false, pending))
            .ok_or_else(|| Error::Internal("openid claimed but member missing".into())),
        Err(e) => Err(e.into()),
    }
}

/// The member who holds this openid, and the write that records a unionid WeChat sends for the
/// first time (not yet written; the member returned has it).
async fn by_openid(
    store: &DynStore,
    identity: &WechatIdentity,
) -> Result<Option<(Member, Vec<Write>)>, Error> {
    let Some(OpenidClaim { user_id: id }) =
        store.get_record(&keys::openid(&identity.openid)).await?
    else {
        return Ok(None);
    };
    let mut member = get(store, &id)
        .await?
        .ok_or_else(|| Error::Internal("openid claim names a missing member".into()))?;
    let mut pending = Vec::new();
    if let (None, Some(unionid)) = (&member.unionid, &identity.unionid) {
        pending.push(
            Write::update(keys::member(&id))
                .set("unionid", unionid.as_str())
                .condition(not_suspended(), NOT_SUSPENDED_LABEL)
                .build(),
        );
        member.unionid = Some(unionid.clone());
    }
    Ok(Some((member, pending)))
}

/// The label of a change of the avatar's holds: the avatar is still the URL it is about.
const AVATAR_IS_LABEL: &str = "avatar_is";

/// Sets or clears the hold of the avatar `url` of `member` (`domain::media::holds`): one write
/// conditioned on the avatar still being `url`; a member gone or with another avatar: nothing to
/// do. The member's holds only ever name their avatar.
pub async fn set_avatar_hold(
    store: &DynStore,
    member: &UserId,
    url: &str,
    hold: Option<Hold>,
) -> Result<(), Error> {
    let update = Write::update(keys::member(member));
    let update = match hold {
        Some(hold) => update.set("holds", json!(Holds::from([(url.to_owned(), hold)]))),
        None => update.remove("holds"),
    };
    let write = update
        .condition(
            Condition::Equals("avatar_url".into(), json!(url)),
            AVATAR_IS_LABEL,
        )
        .build();
    let mut attempt = 0;
    loop {
        match store.write(write.clone()).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => return Ok(()),
            Err(StoreError::Conflict) if attempt < 5 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `PATCH /v1/me`: absent fields stay, `null` clears, values are validated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "patch_field")]
    pub nickname: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub gender: Option<Option<Gender>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub birth_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub residence: Option<Option<String>>,
}

/// Validates every field first, then changes the member in one conditional write.
///
/// A new nickname is checked with WeChat (scene profile) first: risky → 422 `content_risky`,
/// nothing written; held for staff → the approved nickname stays what others see, the new one is
/// the hold's `pending` (`domain::moderation`).
///
/// A new avatar must be the member's own upload for `avatar` under `media_base` (422
/// `avatar_url` otherwise): it is held (`pending`) until its check passes, and the upload's
/// `used_by` gains the avatar, in the same transaction. The avatar they already have (one set
/// before uploads existed included) may be sent again unchanged.
pub async fn update_profile(
    store: &DynStore,
    api: &dyn WechatApi,
    media_base: &str,
    id: &UserId,
    patch: ProfilePatch,
) -> Result<Member, Error> {
    for _ in 0..3 {
        match Box::pin(try_update_profile(store, api, media_base, id, &patch)).await {
            Err(Error::Conflict {
                code: AVATAR_CHANGED,
                ..
            }) => continue,
            other => return other,
        }
    }
    Err(Error::Conflict {
        code: "edit_conflict",
        message: "the profile changed while you edited it; retry".into(),
    })
}

/// The avatar changed between its read and the write (or an upload's check ended meanwhile).
const AVATAR_CHANGED: &str = "avatar_changed";

async fn try_update_profile(
    store: &DynStore,
    api: &dyn WechatApi,
    media_base: &str,
    id: &UserId,
    patch: &ProfilePatch,
) -> Result<Member, Error> {
    let patch = ProfilePatch {
        nickname: patch.nickname.clone(),
        avatar_url: patch.avatar_url.clone(),
        gender: patch.gender,
        birth_date: patch.birth_date.clone(),
        residence: patch.residence.clone(),
    };
    let mut set: Vec<(&str, Value)> = Vec::new();
    let mut remove: Vec<&str> = Vec::new();
    let mut extra: Vec<Write> = Vec::new();
    let text = |v: &str| Value::String(v.to_owned());
    let nickname = patch
        .nickname
        .map(|v| v.map(|s| Nickname::parse(&s)).transpose())
        .transpose()?;
    if let Some(nickname) = nickname {
        let member = get(store, id).await?.ok_or(Error::NotFound("member"))?;
        let old = member.nickname_review.as_ref();
        match nickname {
            None => {
                remove.extend(["nickname", "nickname_review"]);
                let (_, writes) = texts::next_hold(
                    id,
                    Subject::Nickname,
                    Scene::Profile,
                    old,
                    &["nickname"],
                    moderation::Verdict::Pass,
                    &[],
                    OffsetDateTime::now_utc(),
                )?;
                extra.extend(writes);
            }
            Some(new) if Some(new.as_str()) == member.own_nickname() => {}
            Some(new) => {
                let verdict = moderation::check(
                    api,
                    &member.openid,
                    Scene::Profile,
                    None,
                    &[("nickname", new.as_str())],
                )
                .await?;
                let (hold, writes) = texts::next_hold(
                    id,
                    Subject::Nickname,
                    Scene::Profile,
                    old,
                    &["nickname"],
                    verdict,
                    &[("nickname", new.as_str())],
                    OffsetDateTime::now_utc(),
                )?;
                extra.extend(writes);
                match hold {
                    None => {
                        set.push(("nickname", text(new.as_str())));
                        remove.push("nickname_review");
                    }
                    Some(mut hold) => {
                        hold.pending = Some(new.as_str().to_owned());
                        set.push(("nickname_review", json!(hold)));
                    }
                }
            }
        }
    }
    let mut change = |name: &'static str, value: Option<Option<Value>>| match value {
        None => {}
        Some(None) => remove.push(name),
        Some(Some(v)) => set.push((name, v)),
    };
    let avatar = patch
        .avatar_url
        .map(|v| v.map(|s| AvatarUrl::parse(&s)).transpose())
        .transpose()?;
    change("gender", patch.gender.map(|v| v.map(|g| json!(g))));
    change(
        "birth_date",
        patch
            .birth_date
            .map(|v| {
                v.map(|s| BirthDate::parse(&s, today()).map(|d| text(&d.to_text())))
                    .transpose()
            })
            .transpose()?,
    );
    change(
        "residence",
        patch
            .residence
            .map(|v| {
                v.map(|s| Residence::parse(&s).map(|r| json!(r)))
                    .transpose()
            })
            .transpose()?,
    );
    // The avatar: cleared (with its hold), kept as it is, or a new upload checked and attached.
    let mut attached = Vec::new();
    let mut avatar_condition = None;
    match avatar {
        None => {}
        Some(None) => {
            remove.push("avatar_url");
            remove.push("holds");
        }
        Some(Some(url)) => {
            let current = get(store, id).await?.ok_or(Error::NotFound("member"))?;
            if current.avatar_url.as_ref() != Some(&url) {
                let wanted = [Wanted::new("avatar_url", url.as_str(), Purpose::Avatar)];
                let checked = attach::check(store, media_base, id, &wanted).await?;
                let holds = checked.holds_after([&url.as_str().to_owned()], &Holds::new());
                match holds.is_empty() {
                    true => remove.push("holds"),
                    false => set.push(("holds", json!(holds))),
                }
                set.push(("avatar_url", json!(url)));
                attached = checked.writes(&MediaSubject::Avatar { member: id.clone() });
                avatar_condition = Some(match &current.avatar_url {
                    Some(old) => Condition::Equals("avatar_url".into(), json!(old)),
                    None => Condition::Lacks("avatar_url".into()),
                });
            }
        }
    }
    if !set.is_empty() || !remove.is_empty() {
        let mut exists = vec![Condition::Present];
        exists.extend(avatar_condition);
        let mut update = Write::update(keys::member(id))
            .set("updated_at", now_rfc3339())
            .condition(Condition::All(exists), "member_exists");
        for (name, value) in set {
            update = update.set(name, value);
        }
        for name in remove {
            update = update.remove(name);
        }
        let avatar_attached = !attached.is_empty();
        if !avatar_attached && extra.is_empty() {
            return match store.write(update.build()).await {
                Ok(Some(item)) => Member::from_item(item),
                Ok(None)
                | Err(StoreError::ConditionFailed {
                    label: "member_exists",
                }) => Err(Error::NotFound("member")),
                Err(e) => Err(e.into()),
            };
        }
        let mut writes = vec![update.build()];
        writes.extend(extra);
        writes.extend(attached);
        return match store.transact(writes).await {
            Ok(()) => get(store, id).await?.ok_or(Error::NotFound("member")),
            // Gone, or its avatar changed meanwhile, or the upload did: read again.
            Err(
                StoreError::ConditionFailed {
                    label: "member_exists" | attach::ATTACH_LABEL,
                }
                | StoreError::Conflict,
            ) if avatar_attached => Err(Error::Conflict {
                code: AVATAR_CHANGED,
                message: "the avatar changed meanwhile; retry".into(),
            }),
            Err(StoreError::ConditionFailed {
                label: "member_exists",
            }) => Err(Error::NotFound("member")),
            Err(e) => Err(e.into()),
        };
    }
    get(store, id).await?.ok_or(Error::NotFound("member"))
}

/// Staff's decision on a member's held nickname: approval makes it the nickname others see;
/// rejection keeps the approved one and shows the member why. Conditioned on the member's
/// `updated_at` read (every profile change sets it); `None` when the member no longer holds
/// `check_id`.
pub async fn text_decision(
    store: &DynStore,
    id: &UserId,
    check_id: &str,
    decision: Decision,
    reason: &str,
) -> Result<Option<Vec<Write>>, Error> {
    let Some(member) = get(store, id).await? else {
        return Ok(None);
    };
    let Some(hold) = member
        .nickname_review
        .as_ref()
        .filter(|h| h.check_id == check_id)
    else {
        return Ok(None);
    };
    let mut update = Write::update(keys::member(id))
        .set("updated_at", now_rfc3339())
        .condition(
            Condition::Equals("updated_at".into(), json!(member.updated_at)),
            "member_unchanged",
        );
    match texts::decided_hold(hold, decision, reason) {
        None => {
            update = update.remove("nickname_review");
            if let Some(pending) = &hold.pending {
                update = update.set("nickname", pending.as_str());
            }
        }
        Some(rejected) => update = update.set("nickname_review", json!(rejected)),
    }
    Ok(Some(vec![update.build()]))
}
